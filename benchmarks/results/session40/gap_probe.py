"""Session 40: is the GPU idle inside a timed backward / forward+backward call?

Session 40's call 1: at causal 8k (B=1, H=16, D=128, bf16) the backward's kernels sum to 1.384 ms
per call (profiler, back-to-back calls), while bench_attention's do_bench medians (session 37's
table) are 1.509 ms for the backward alone and 2.024 for forward+backward (forward alone 0.479):
~0.125-0.18 ms a call that no kernel accounts for. This runs do_bench's loop (L2 flush by a
256 MB zero, start event, call, end event; no sync between calls) under the torch profiler and
prints, per mode: the median time from the flush's end to the call's first kernel (lead), the
median span of a call (first kernel start to last kernel end), the kernels' busy time in it, and
the idle gaps (> 1 us) with the kernels on either side, and the host time to issue a call with the
GPU held behind a sleep; the same for SDPA is_causal.

Prediction: gaps of ~0.1 ms in maskattn's calls (host time before a launch); SDPA's small.
"""
import collections
import os
import sys

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.getcwd())
import maskattn as ma  # noqa: E402
from benchmarks import families  # noqa: E402
from benchmarks.ab import backward_inputs, env_cases, host_us, print_setup  # noqa: E402

print_setup()
CASES = env_cases("causal:8192:128 sliding:8192:128")
sdpa = torch.nn.functional.scaled_dot_product_attention
cache = torch.empty(256 * 1024 * 1024 // 4, dtype=torch.int32, device="cuda")
N = 20


def timeline(fn, label):
    for _ in range(5):
        cache.zero_()
        fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
        for _ in range(N):
            cache.zero_()
            fn()
        torch.cuda.synchronize()
    kern = sorted(((e.time_range.start, e.time_range.end, e.name) for e in prof.events()
                   if e.device_type == torch.autograd.DeviceType.CUDA), key=lambda x: x[0])
    # split into calls at the flushes (the 256 MB zero_: a fill kernel of tens of microseconds;
    # the forward's own small zeroed buffers are fills of a few)
    calls = []
    for s, e, n in kern:
        if "fill" in n.lower() and e - s > 30:
            calls.append([(s, e, "flush")])
        elif calls:
            calls[-1].append((s, e, n))
    spans, busy, leads, gaps = [], [], [], collections.Counter()
    for ks in calls:
        if len(ks) < 2:
            continue
        leads.append(ks[1][0] - ks[0][1])  # the flush's end to the call's first kernel
        ks = ks[1:]
        spans.append(ks[-1][1] - ks[0][0])
        busy.append(sum(e - s for s, e, _ in ks))
        for (s0, e0, n0), (s1, e1, n1) in zip(ks, ks[1:]):
            if s1 - e0 > 1:
                gaps[(n0[:40], n1[:40])] += (s1 - e0) / len(calls)
    print(f"{label}: {len(spans)} calls, lead median {np.median(leads):.1f} us, span median "
          f"{np.median(spans):.1f} us, kernels busy {np.median(busy):.1f} us, "
          f"kernels per call {len(calls[len(calls) // 2]) - 1}, host issue {host_us(fn):.1f} us", flush=True)
    for (a, b), t in gaps.most_common(6):
        print(f"    gap {t:7.1f} us per call between {a!r} and {b!r}", flush=True)


for fam, L, d in CASES:
    q, k, v, do = backward_inputs(L, d)
    bm = ma.compile_mask(families.mask(fam, L), L, L, device="cuda")
    out = ma.attention(q, k, v, bm)
    timeline(lambda: torch.autograd.grad(out, (q, k, v), do, retain_graph=True), f"{fam} {L} maskattn bwd")
    timeline(lambda: torch.autograd.grad(ma.attention(q, k, v, bm), (q, k, v), do), f"{fam} {L} maskattn fwd+bwd")
    if fam == "causal":
        o2 = sdpa(q, k, v, is_causal=True)
        timeline(lambda: torch.autograd.grad(o2, (q, k, v), do, retain_graph=True), f"{fam} {L} sdpa bwd")
        timeline(lambda: torch.autograd.grad(sdpa(q, k, v, is_causal=True), (q, k, v), do), f"{fam} {L} sdpa fwd+bwd")
