"""Session 31: the backward alone of this tree's ``maskattn`` against another commit's package in
the same process, interleaved rounds (``benchmarks.ab.interleaved_medians``), and the largest
gradient difference between the two. The other package is a copy of that commit's ``maskattn/``
renamed ``maskattn_base`` (its core imports are relative), e.g.

    mkdir -p .ab && git archive main maskattn | tar -x -C .ab && mv .ab/maskattn .ab/maskattn_base

carried to the GPU machine with ``carry: [".ab"]``. Cases: ``CASES="family:L:D ..."`` (B=1, H=16,
bf16, ``benchmarks.families`` masks, built with each package's own mask classes); ``AB_FIRST=tree``
times this tree first in every round (default: the base first).

Usage: python benchmarks/results/session31/ab_trees_bwd.py
"""
import os
import sys

sys.path.insert(0, os.getcwd())
sys.path.insert(0, os.path.join(os.getcwd(), ".ab"))
import maskattn  # noqa: E402
import maskattn_base  # noqa: E402
from benchmarks.ab import (backward_inputs, env_cases, interleaved_medians, max_difference,  # noqa: E402
                           package_run, print_setup)

print_setup()
CASES = env_cases("sliding:32768:128 documents:32768:128 causal:32768:128 sliding:8192:128 causal:8192:128 "
                  "documents:8192:128 causal:32768:256 sliding:32768:256")
ROUNDS = int(os.environ.get("AB_ROUNDS", "3"))
for fam, L, d in CASES:
    q, k, v, do = backward_inputs(L, d)
    order = (("base", maskattn_base), ("tree", maskattn))
    fns = {label: package_run(pkg, fam, L, q, k, v, do, True)
           for label, pkg in (order[::-1] if os.environ.get("AB_FIRST") == "tree" else order)}
    grads = {label: fn() for label, fn in fns.items()}
    med = interleaved_medians(fns, ROUNDS, 5 if L >= 32768 else 20)
    diff = max_difference(grads["base"], grads["tree"])
    print(f"{fam:10s} {L:6d} D{d:<3d} | base {med['base'] / 1e3:.3f} ms | tree {med['tree'] / 1e3:.3f} ms "
          f"({med['base'] / med['tree']:.3f}x) | max |grad diff| {diff:.1e}", flush=True)
