"""Session 29: the one-pass Hopper backward at head dim 64 (``flash_bwd_sm90.HEAD_DIMS``: dQ split
between the consumers 32 dims each, 64 x 32 wgmmas) against the portable two-kernel backward that
served head dim 64 before, same inputs, interleaved in one process (``flash_bwd_sm90.ENABLED``
toggled; the backward plan's cache key holds it). Head dim 128 causal 32k as a check that nothing
moved there.

Prediction (written before the run): at head dim 128 the Hopper backward runs causal 32k ~1.5x
the portable kernels (session 28's table: det 30.5 vs 21.2 ms); at 64 the products are half as
long against the same exp2 / mask work per block, so less: causal 32k 1.2-1.4x (16.7 ms ->
12-14 ms), sliding / documents 1.1-1.3x.

B=1, H=16, bf16; CUDA-event medians of ``torch.autograd.grad`` through ``ma.attention``
(backward only: the forward's graph is kept). Usage: python benchmarks/results/session29/ab_bwd_d64.py
"""
import os
import sys

import torch
import triton

sys.path.insert(0, os.getcwd())
from benchmarks.ab import backward_on_off  # noqa: E402
from maskattn.kernels import flash_bwd_sm90  # noqa: E402

print("GPU", torch.cuda.get_device_name(), torch.__version__, triton.__version__, flush=True)
ROUNDS = int(os.environ.get("AB_ROUNDS", 5))
CASES = [c.split(":") for c in os.environ.get(
    "CASES", "causal:32768:64 sliding:32768:64 documents:32768:64 causal:8192:64 sliding:8192:64 "
             "documents:8192:64 causal:32768:128").split()]
backward_on_off(flash_bwd_sm90, [(fam, int(L), int(d)) for fam, L, d in CASES], ROUNDS, "hopper")
