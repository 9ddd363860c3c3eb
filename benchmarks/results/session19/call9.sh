#!/usr/bin/env bash
# Session 19, call 9: the packed (tree verification) and chunked-prefill paths, HEAD's module vs the tree.
export PYTHONPATH=$PWD; timeout 150 python benchmarks/results/session19/probe_packed.py 2>&1 | grep -v Warn | tee $OUT/probe_packed.log
