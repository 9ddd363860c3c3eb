"""Session 37: the backward of maps whose busiest key tile outlasts the mean program (tree and
Longformer at 8k / 32k: a shared trunk or global keys that every query tile sees), which main sends
to the portable kernels (``flash_bwd_sm90.column_bound``), in three ways, same process,
interleaved rounds (``ab.interleaved_medians``; B=1, H=16, bf16, ``benchmarks.families`` masks):

* ``portable``: the two portable kernels (main's choice for these maps);
* ``whole``: the Hopper one-pass kernel with every key tile whole (``split_columns.SPLIT_SHARE``
  infinite), the busiest program carrying the heaviest key tile;
* ``cut``: the Hopper kernel with the heavy key tiles cut into parts (``split_columns``, the new
  default, ``SPLIT_SHARE`` 0.5); ``cut1``: the same with ``SPLIT_SHARE`` 1.0 (fewer, longer parts).

Each variant has a map of its own (the cut lists are cached on the map). Prints medians and the
largest gradient difference from ``portable``."""
import os

import torch

import maskattn as ma
from benchmarks import ab, families
from maskattn.kernels import flash_bwd_sm90, split_columns

ab.print_setup("| bwd: portable / Hopper whole key tiles / Hopper cut key tiles")
bound = flash_bwd_sm90.column_bound
share = split_columns.SPLIT_SHARE
VARIANTS = {"portable": (False, share), "whole": (True, float("inf")), "cut": (True, share), "cut1": (True, 1.0)}
for fam, L, d in ab.env_cases("tree:8192:128 longformer:8192:128 tree:32768:128 longformer:32768:128"):
    q, k, v, do = ab.backward_inputs(L, d)
    fns, grads = {}, {}
    for name, (hopper, cut_share) in VARIANTS.items():
        bm = ma.compile_mask(families.mask(fam, L), L, L, device="cuda")
        out = ma.attention(q, k, v, bm)

        def run(out=out, hopper=hopper, cut_share=cut_share):
            flash_bwd_sm90.ENABLED = hopper
            split_columns.SPLIT_SHARE = cut_share
            return torch.autograd.grad(out, (q, k, v), do, retain_graph=True)
        grads[name] = run()
        fns[name] = run
    torch.cuda.synchronize()
    med = ab.interleaved_medians(fns, int(os.environ.get("AB_ROUNDS", "5")), 5 if L >= 32768 else 20)
    cols = [f"{n} {med[n] / 1e3:.3f} ms ({med['portable'] / med[n]:.3f}x, max |grad diff| "
            f"{ab.max_difference(grads['portable'], grads[n]):.1e})" for n in VARIANTS]
    print(f"{fam:10s} {L:6d} D{d:<3d} | " + " | ".join(cols), flush=True)
flash_bwd_sm90.ENABLED, split_columns.SPLIT_SHARE = True, share
