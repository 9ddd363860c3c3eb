"""Session 44 (for the next call): why a one-token decode step that compiles its map per call
('per step' in bench_inference) took 0.592 ms in session 44, against 0.378 in session 41 and 0.372
for four tokens in the same run.

For q=1 and q=4 (B=8, 32 / 8 heads, D=128, bf16, 32k keys, ``causal()`` compiled every call with
16-row tiles, as bench_inference does), host time per step (``benchmarks.ab.host_us``) and do_bench
time, in each package of PKGS (default: session 41's code as ``.ab/maskattn_s41``, and this
checkout): first before any mapless call in the process, then after ``attention(q, k, v)`` has
recorded its mapless plan, as bench_inference's 'no mask' column does. Then a cProfile of this
checkout's q=1 step (top functions by cumulative time).

Hypothesis: the mapless call's presence slows the map step down. Something it records (compiled
kernel cache entries, plans) would make the map step's launch bind through Triton (~200 us) on
every call.
"""
import cProfile
import os
import pstats
import sys

import torch
import triton.testing

sys.path.insert(0, os.getcwd())
from benchmarks.ab import env_packages, host_us, print_setup  # noqa: E402

PKGS = env_packages("maskattn_s41 maskattn")
print_setup("|", " ".join(f"{n}={p.__file__}" for n, p in PKGS.items()))
dev, bf = "cuda", torch.bfloat16
g = torch.Generator(device=dev).manual_seed(0)
k, v = (torch.randn(8, 8, 32768, 128, device=dev, dtype=bf, generator=g) for _ in range(2))
qs = {lq: torch.randn(8, 32, lq, 128, device=dev, dtype=bf, generator=g) for lq in (1, 4)}


def step(pkg, lq):
    mask, q = pkg.causal(), qs[lq]
    return lambda: pkg.attention(q, k, v, pkg.compile_mask(mask, lq, 32768, device=dev, block_q=16))


def report(when):
    for name, pkg in PKGS.items():
        for lq in (1, 4):
            fn = step(pkg, lq)
            fn()
            torch.cuda.synchronize()
            ms = triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median")
            print(f"{when:14s} {name:14s} q={lq}: host {host_us(fn):7.1f} us, do_bench {ms * 1e3:7.1f} us", flush=True)


report("before")
for name, pkg in PKGS.items():
    pkg.attention(qs[1], k, v)  # records the mapless plan where the package has that path
torch.cuda.synchronize()
report("after mapless")
ours = PKGS[list(PKGS)[-1]]
fn = step(ours, 1)
prof = cProfile.Profile()
prof.enable()
for _ in range(200):
    fn()
prof.disable()
torch.cuda.synchronize()
pstats.Stats(prof).sort_stats("cumulative").print_stats(18)
