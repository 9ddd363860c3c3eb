"""Session 40: split-KV decode of several copies of the package in one process (interleaved rounds,
``benchmarks.ab.interleaved_medians``, each against the first; largest output difference from the
first), on bench_inference.py's short-query cases plus smaller trees / batches, the map compiled
once per case and package (the calls replay their recorded launches), and SDPA (q=1) as the anchor.
Copies as in ``session32/ab_pkgs.py`` (``.ab/maskattn_*``, carry ``.ab``); ``PKGS``, ``AB_ROUNDS``.

Prediction (real_rows.py: tiles full on the real rows run unmasked): tree verification 64 / 32704,
B=4: 0.257 -> ~0.22 ms (the masked softmax ~1.2x a full block's cost on the packed Hopper items);
decode q=1 / q=4 (portable kernel, memory-bound): 1.00-1.01x.
"""
import os
import sys

import torch

sys.path.insert(0, os.getcwd())
from benchmarks.ab import env_packages, interleaved_medians, print_setup  # noqa: E402
from benchmarks.bench_inference import D, HKV, HQ, tree_parents  # noqa: E402

PKGS = env_packages()
NAMES = list(PKGS)
ROUNDS = int(os.environ.get("AB_ROUNDS", "3"))
print_setup("|", " ".join(f"{n}={p.__file__}" for n, p in PKGS.items()))
sdpa = torch.nn.functional.scaled_dot_product_attention
CASES = [("decode q=1", 8, 1, 32768, None), ("decode q=4", 8, 4, 32768, None),
         ("tree 64 / 32704", 4, 64, 32768, 64), ("tree 64 / 32704 B=1", 1, 64, 32768, 64),
         ("tree 32 / 8160 B=4", 4, 32, 8192, 32), ("tree 16 / 32752 B=4", 4, 16, 32768, 16)]
ONLY = os.environ.get("AB_CASES")  # e.g. "0 2": indices into CASES
for label, B, lq, lk, nodes in ([CASES[int(i)] for i in ONLY.split()] if ONLY else CASES):
    g = torch.Generator(device="cuda").manual_seed(0)
    q = torch.randn(B, HQ, lq, D, device="cuda", dtype=torch.bfloat16, generator=g)
    k, v = (torch.randn(B, HKV, lk, D, device="cuda", dtype=torch.bfloat16, generator=g) for _ in range(2))
    fns, outs = {}, {}
    for name, pkg in PKGS.items():
        mask = pkg.causal() if nodes is None else pkg.tree(tree_parents(nodes), prefix=lk - nodes)
        bm = pkg.compile_mask(mask.to("cuda"), lq, lk, device="cuda")
        fns[name] = (lambda pkg, bm: lambda: pkg.attention(q, k, v, bm))(pkg, bm)
        outs[name] = fns[name]()
    if lq == 1:
        fns["sdpa"] = lambda: sdpa(q, k, v, enable_gqa=True)
    med = interleaved_medians(fns, ROUNDS, 20)
    ref = NAMES[0]
    cols = [f"{ref} {med[ref]:.1f} us"]
    for name in NAMES[1:] + (["sdpa"] if lq == 1 else []):
        diff = f", max diff {float((outs[ref] - outs[name]).abs().max()):.1e}" if name in outs else ""
        cols.append(f"{name} {med[name]:.1f} us ({med[ref] / med[name]:.3f}x{diff})")
    print(f"{label:22s} | " + " | ".join(cols), flush=True)
