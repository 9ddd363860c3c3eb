"""Session 29: the Hopper forward at head dims 64 and 256 (``HEAD_CONFIGS``: 64 x 128 key blocks,
3 stages; 256: 64-key blocks, 2 stages) against the portable kernel that served them before, same
inputs, interleaved in one process (``flash_fwd_sm90.ENABLED`` toggled; the forward plan's cache key
holds it). Head dim 128 as a check that nothing moved there (both sides as before).

Prediction (written before the run): head dim 256 causal 32k 22.3 ms -> ~14-16 ms (1.4-1.6x; the
portable kernel ran 395 TF/s, the head-dim-128 Hopper kernel ~630, and at 256 the softmax is half
the work per flop); sliding / documents 32k 1.3-1.5x. Head dim 64: 0.95-1.15x (session 8's H200
kernel measured 0.88-0.95x; it has since gained the persistent grid and the schedules, and its
products are half as long as at 128, so the softmax is harder to hide).

B=1, H=16, bf16; CUDA-event medians of ``ma.attention`` on a compiled map (forward only).
Usage: python benchmarks/results/session29/ab_head_dims.py
"""
import os
import sys

import torch
import triton

sys.path.insert(0, os.getcwd())
import maskattn as ma  # noqa: E402
from benchmarks import families  # noqa: E402
from benchmarks.ab import interleaved_medians  # noqa: E402
from maskattn.kernels import flash_fwd_sm90  # noqa: E402

print("GPU", torch.cuda.get_device_name(), torch.__version__, triton.__version__, flush=True)
ROUNDS = int(os.environ.get("AB_ROUNDS", 5))
CASES = [c.split(":") for c in os.environ.get(
    "CASES", "causal:32768:256 sliding:32768:256 documents:32768:256 longformer:32768:256 tree:32768:256 "
             "causal:8192:256 documents:8192:256 causal:32768:64 sliding:32768:64 documents:32768:64 "
             "longformer:32768:64 tree:32768:64 causal:8192:64 sliding:8192:64 documents:8192:64 "
             "causal:32768:128").split()]

for fam, L, d in CASES:
    L, d = int(L), int(d)
    g = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (torch.randn(1, 16, L, d, device="cuda", generator=g, dtype=torch.bfloat16) for _ in range(3))
    bm = ma.compile_mask(families.mask(fam, L), L, L, device="cuda")
    outs, fns = {}, {}
    for name, enabled in (("portable", False), ("hopper", True)):
        def run(enabled=enabled):
            flash_fwd_sm90.ENABLED = enabled
            return ma.attention(q, k, v, bm)
        outs[name] = run()
        fns[name] = run
    torch.cuda.synchronize()
    reps = 5 if L >= 32768 else 20
    med = interleaved_medians(fns, ROUNDS, reps)
    diff = float((outs["portable"].float() - outs["hopper"].float()).abs().max())
    print(f"{fam:10s} {L:6d} D{d:<3d} | portable {med['portable'] / 1e3:.3f} ms | hopper {med['hopper'] / 1e3:.3f} ms "
          f"({med['portable'] / med['hopper']:.3f}x) | max |diff| {diff:.1e}", flush=True)
flash_fwd_sm90.ENABLED = True
