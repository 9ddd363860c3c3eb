"""Session 30: where the one-pass Hopper backward's time goes besides its main kernel, per call
(torch profiler, GPU kernel times averaged over 10 backward calls of a retained graph): the
preparation launch (``_bwd_prep``: delta, padded lse, the zeroed fp32 dQ accumulator, the cleaned
K), the main kernel, and the cast of the dQ accumulator to the input dtype (a torch copy kernel).

Prediction (before the run), from memory traffic at ~3 TB/s, B=1, H=16, D=128, bf16, 32k: the
preparation reads O and dO (268 MB) and K (134), writes the accumulator (268) and the clean K
(134): ~0.27 ms; the cast reads 268 and writes 134 MB: ~0.13 ms. Sliding 32k backward ~1.9 ms, so
the two passes ~20% of it; causal 32k ~2%. At 8k a quarter of those times.

Usage: python benchmarks/results/session30/profile_bwd_parts.py
"""
import collections
import os
import sys

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.getcwd())
import maskattn as ma  # noqa: E402
from benchmarks import families  # noqa: E402
from benchmarks.ab import backward_inputs, env_cases, print_setup  # noqa: E402

print_setup()
CASES = env_cases("sliding:32768:128 documents:32768:128 causal:32768:128 sliding:8192:128 causal:32768:256")
CALLS = 10
for fam, L, d in CASES:
    q, k, v, do = backward_inputs(L, d)
    bm = ma.compile_mask(families.mask(fam, L), L, L, device="cuda")
    out = ma.attention(q, k, v, bm)
    for _ in range(3):
        torch.autograd.grad(out, (q, k, v), do, retain_graph=True)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(CALLS):
            torch.autograd.grad(out, (q, k, v), do, retain_graph=True)
        torch.cuda.synchronize()
    parts = collections.Counter()
    for e in prof.events():
        if e.device_type == torch.autograd.DeviceType.CUDA:
            name = e.name
            key = ("prep" if "_bwd_prep" in name else "main" if "_attn_bwd" in name
                   else "cast/copy" if "elementwise" in name or "copy" in name.lower() else name[:40])
            parts[key] += e.device_time_total if hasattr(e, "device_time_total") else e.cuda_time_total
    total = sum(parts.values())
    if not total:
        print(f"{fam} {L} D{d}: no CUDA kernel events recorded", flush=True)
        continue
    line = " | ".join(f"{k} {v / CALLS:8.1f} us ({100 * v / total:4.1f}%)" for k, v in parts.most_common())
    print(f"{fam:10s} {L:6d} D{d:<3d} | all {total / CALLS:8.1f} us | {line}", flush=True)
