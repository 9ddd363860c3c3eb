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

sys.path.insert(0, os.getcwd())
sys.path.insert(0, os.path.join(os.getcwd(), ".ab"))
from benchmarks.ab import (backward_inputs, env_cases, interleaved_medians, max_difference,  # noqa: E402
                           package_run, print_setup)

NAMES = os.environ.get("PKGS", "maskattn_main maskattn").split()
PKGS = {name: importlib.import_module(name) for name in NAMES}
PASS = os.environ.get("PASS", "fwd")
print_setup("| pass", PASS, "|", " ".join(f"{n}={p.__file__}" for n, p in PKGS.items()))
CASES = env_cases("causal:32768:128 sliding:32768:128 documents:32768:128 tree:32768:128 "
                  "sliding:8192:128 documents:8192:128 tree:8192:128 causal:8192:128")
ROUNDS = int(os.environ.get("AB_ROUNDS", "3"))
for fam, L, d in CASES:
    q, k, v, do = backward_inputs(L, d)
    fns = {name: package_run(pkg, fam, L, q, k, v, do, PASS == "bwd") for name, pkg in PKGS.items()}
    results = {name: fn() for name, fn in fns.items()}
    med = interleaved_medians(fns, ROUNDS, 5 if L >= 32768 else 20)
    ref = NAMES[0]
    cols = [f"{ref} {med[ref] / 1e3:.3f} ms"]
    for name in NAMES[1:]:
        diff = max_difference(results[ref], results[name])
        cols.append(f"{name} {med[name] / 1e3:.3f} ms ({med[ref] / med[name]:.3f}x, max diff {diff:.1e})")
    print(f"{fam:10s} {L:6d} D{d:<3d} | " + " | ".join(cols), flush=True)
