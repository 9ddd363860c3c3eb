"""Session 29, for a later device call (branch ``s29-bwd-wide``): the Hopper backward for head dims
129-256 (``flash_bwd_sm90_wide``: 64-key halves of each key tile, both consumers computing S and dP,
each owning 128 dims of dK / dV / dQ) against the portable two-kernel backward that serves head dim
256 on main, same inputs, interleaved in one process (``flash_bwd_sm90_wide.ENABLED`` toggled; the
backward plan's cache key holds it).

Prediction (written before any run): causal 32k 133.8 ms (portable, session 29's benchmark) ->
60-90 ms (1.5-2.2x): 7 products' worth of tensor-core work for 5 at the head-dim-128 kernel's rate
would be ~60 ms; its dQ reduce traffic per unit of work is twice that kernel's (64-key programs),
~2 TB/s into L2 at that rate, which may bind. Sliding / documents 1.3-2x.

B=1, H=16, bf16; CUDA-event medians of ``torch.autograd.grad`` through ``ma.attention`` (backward
only). Usage: python benchmarks/results/session29/ab_bwd_wide.py
"""
import os
import sys

import torch
import triton

sys.path.insert(0, os.getcwd())
from benchmarks.ab import backward_on_off  # noqa: E402
from maskattn.kernels import flash_bwd_sm90_wide  # noqa: E402

print("GPU", torch.cuda.get_device_name(), torch.__version__, triton.__version__, flush=True)
ROUNDS = int(os.environ.get("AB_ROUNDS", 3))
CASES = [c.split(":") for c in os.environ.get(
    "CASES", "causal:32768:256 sliding:32768:256 documents:32768:256 causal:8192:256 sliding:8192:256 "
             "documents:8192:256 causal:8192:192").split()]
backward_on_off(flash_bwd_sm90_wide, [(fam, int(L), int(d)) for fam, L, d in CASES], ROUNDS, "wide")
