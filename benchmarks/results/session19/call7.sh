#!/usr/bin/env bash
# Session 19, call 7: the 8k longformer / documents / sliding forward through ma.attention and the kernel alone, HEAD's module vs the tree.
export PYTHONPATH=$PWD; timeout 150 python benchmarks/results/session19/probe_8k.py 2>&1 | grep -v Warn | tee $OUT/probe_8k.log
