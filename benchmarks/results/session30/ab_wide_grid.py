"""Session 30: the wide Hopper backward (head dim 256) on a persistent grid (lists, the default where
a key tile's column holds <= ``PERSISTENT_MAX_MEAN_TILES`` query tiles on average) against one program
per key tile in L2 sections, same inputs, interleaved in one process. Each variant gets its own
compiled map, so its backward plan (which holds the grid choice) is recorded with it.

Why: session 30's first A/B (``ab_bwd_wide.log``) had causal 8k at head dim 256 0.94x the portable
kernels while causal 32k (one program per key tile) was 1.48x and causal 8k at head dim 192 1.44x.
Prediction (before the run): at causal 8k D256 a program's query rows (Q, dO bf16 + fp32 dQ: 16.8 MB
a head) across the 16 heads the persistent programs run at once far exceed the L2; sections keep one
or two heads at a time: 9.25 -> 6-6.5 ms (~1.45x). Sliding / documents 8k (short columns): the
persistent grid stays faster (program start dominates), 0.8-0.95x for per-key-tile.

B=1, H=16, bf16; CUDA-event medians of ``torch.autograd.grad`` through ``ma.attention``.
Usage: python benchmarks/results/session30/ab_wide_grid.py
"""
import os
import sys

import torch

sys.path.insert(0, os.getcwd())
import maskattn as ma  # noqa: E402
from benchmarks import families  # noqa: E402
from benchmarks.ab import backward_inputs, env_cases, interleaved_medians, max_difference, print_setup  # noqa: E402
from maskattn.kernels import flash_bwd_sm90  # noqa: E402

print_setup()
ROUNDS = int(os.environ.get("AB_ROUNDS", 3))
CASES = env_cases("causal:8192:256 causal:8192:192 causal:4096:256 documents:8192:256 sliding:8192:256 "
                  "causal:16384:256 causal:8192:128")
default = flash_bwd_sm90.PERSISTENT_MAX_MEAN_TILES
for fam, L, d in CASES:
    q, k, v, do = backward_inputs(L, d)
    fns, grads = {}, {}
    for label, bound in (("lists", 10**9), ("per_tile", 0)):
        bm = ma.compile_mask(families.mask(fam, L), L, L, device="cuda")
        out = ma.attention(q, k, v, bm)

        def run(out=out, bound=bound):
            flash_bwd_sm90.PERSISTENT_MAX_MEAN_TILES = bound  # read when the plan is recorded (first call)
            return torch.autograd.grad(out, (q, k, v), do, retain_graph=True)
        grads[label] = run()
        fns[label] = run
    torch.cuda.synchronize()
    med = interleaved_medians(fns, ROUNDS, 5 if L >= 32768 else 20)
    diff = max_difference(grads["lists"], grads["per_tile"])
    mean_cols = bm.nonempty_tiles / (bm.batch * bm.heads * bm.n_k_tiles)
    print(f"{fam:10s} {L:6d} D{d:<3d} mean column {mean_cols:5.1f} | lists {med['lists'] / 1e3:.3f} ms | per key tile "
          f"{med['per_tile'] / 1e3:.3f} ms ({med['lists'] / med['per_tile']:.3f}x) | max |grad diff| {diff:.1e}",
          flush=True)
flash_bwd_sm90.PERSISTENT_MAX_MEAN_TILES = default
