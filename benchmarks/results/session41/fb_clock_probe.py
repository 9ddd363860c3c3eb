"""Session 41: causal 8k forward+backward, maskattn against SDPA (cuDNN), timed as bench_attention
times it (do_bench medians, L2 flushed) in interleaved rounds, with the SM clock and power read
by nvidia-smi in the background (``$OUT/smi.csv``, sampled every 50 ms).

Call 1's ``gap_probe.py`` found no idle GPU in a timed call (lead ~2 us, gaps <= 13 us) and, under
the profiler (20 calls), spans of 1.834 ms (maskattn) against 1.922 (SDPA) for forward+backward
and 1.375 / 1.374 for the backward alone, where session 37's bench_attention reported 2.024 / 2.012
and 1.509 for maskattn's backward. Prediction: if the difference is the clock (sustained runs
hit the power cap, short profiled bursts do not), do_bench times sit ~10% above the profiled spans
for both, at SM clocks below 1980 MHz; rep=20 ms runs come out faster than rep=100.
"""
import os
import sys

import numpy as np
import torch
import triton.testing

sys.path.insert(0, os.getcwd())
import maskattn as ma  # noqa: E402
from benchmarks import families  # noqa: E402
from benchmarks.ab import backward_inputs, print_setup  # noqa: E402

print_setup()
sdpa = torch.nn.functional.scaled_dot_product_attention
L, D = 8192, 128
q, k, v, do = backward_inputs(L, D)
bm = ma.compile_mask(families.mask("causal", L), L, L, device="cuda")
inputs = (q, k, v)
calls = {
    "maskattn fwd+bwd": lambda: torch.autograd.grad(ma.attention(q, k, v, bm), inputs, do),
    "sdpa fwd+bwd": lambda: torch.autograd.grad(sdpa(q, k, v, is_causal=True), inputs, do),
    "maskattn fwd": lambda: ma.attention(q, k, v, bm),
    "sdpa fwd": lambda: sdpa(q, k, v, is_causal=True),
}
times = {(name, rep): [] for name in calls for rep in (20, 100)}
for r in range(int(os.environ.get("ROUNDS", "5"))):
    for name, fn in calls.items():
        for rep in (20, 100):
            times[(name, rep)].append(float(triton.testing.do_bench(fn, warmup=25, rep=rep, return_mode="median")))
for (name, rep), ts in times.items():
    print(f"{name:18s} rep={rep:3d} ms: median {np.median(ts):.4f}  {[round(t, 4) for t in ts]}", flush=True)
for rep in (20, 100):
    for mode in ("fwd+bwd", "fwd"):
        a, b = np.median(times[(f"maskattn {mode}", rep)]), np.median(times[(f"sdpa {mode}", rep)])
        print(f"rep={rep} {mode}: sdpa / maskattn = {b / a:.3f}x", flush=True)
