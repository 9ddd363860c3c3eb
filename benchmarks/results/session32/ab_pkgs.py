"""Session 32: the forward (``PASS=fwd``, the default) or the backward alone (``PASS=bwd``) of several
copies of the ``maskattn`` package in one process, interleaved rounds
(``benchmarks.ab.interleaved_medians``), each against the first, with the largest output (or
gradient) difference from the first. The copies live in ``.ab/`` under names of their own (their
core imports are relative), e.g. for a commit C:

    mkdir -p .ab && git archive C maskattn | tar -x -C .ab && mv .ab/maskattn .ab/maskattn_C

carried to the GPU machine with ``carry: [".ab"]``. ``PKGS="maskattn_main maskattn_C ..."``
(``maskattn``: this checkout's). Cases: ``CASES="family:L:D ..."`` (B=1, H=16, bf16,
``benchmarks.families`` masks, built with each package's own mask classes); ``AB_ROUNDS``.

Usage: PKGS="maskattn_main maskattn_C" PASS=fwd python benchmarks/results/session32/ab_pkgs.py
"""
import importlib
import os
import sys

import torch
import triton

sys.path.insert(0, os.getcwd())
sys.path.insert(0, os.path.join(os.getcwd(), ".ab"))
import maskattn  # noqa: E402
from benchmarks import families  # noqa: E402
from benchmarks.ab import backward_inputs, interleaved_medians  # noqa: E402

NAMES = os.environ.get("PKGS", "maskattn_main maskattn").split()
PKGS = {name: importlib.import_module(name) for name in NAMES}
PASS = os.environ.get("PASS", "fwd")
print("GPU", torch.cuda.get_device_name(), torch.__version__, triton.__version__, "| pass", PASS,
      "|", " ".join(f"{n}={p.__file__}" for n, p in PKGS.items()), flush=True)
CASES = [c.split(":") for c in os.environ.get(
    "CASES", "causal:32768:128 sliding:32768:128 documents:32768:128 tree:32768:128 "
             "sliding:8192:128 documents:8192:128 tree:8192:128 causal:8192:128").split()]
ROUNDS = int(os.environ.get("AB_ROUNDS", "3"))
for fam, L, d in ((f, int(L), int(d)) for f, L, d in CASES):
    q, k, v, do = backward_inputs(L, d)
    results, fns = {}, {}
    for name, pkg in PKGS.items():
        families.ma = pkg
        bm = pkg.compile_mask(families.mask(fam, L), L, L, device="cuda")
        if PASS == "bwd":
            out = pkg.attention(q, k, v, bm)

            def run(out=out):
                return torch.autograd.grad(out, (q, k, v), do, retain_graph=True)
        else:
            def run(pkg=pkg, bm=bm):
                with torch.no_grad():
                    return (pkg.attention(q, k, v, bm),)
        results[name] = run()
        fns[name] = run
    families.ma = maskattn
    torch.cuda.synchronize()
    med = interleaved_medians(fns, ROUNDS, 5 if L >= 32768 else 20)
    ref = NAMES[0]
    cols = [f"{ref} {med[ref] / 1e3:.3f} ms"]
    for name in NAMES[1:]:
        diff = max(float((a.float() - b.float()).abs().max()) for a, b in zip(results[ref], results[name]))
        cols.append(f"{name} {med[name] / 1e3:.3f} ms ({med[ref] / med[name]:.3f}x, max diff {diff:.1e})")
    print(f"{fam:10s} {L:6d} D{d:<3d} | " + " | ".join(cols), flush=True)
