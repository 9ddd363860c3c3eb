#!/usr/bin/env bash
# Session 19, call 8 (FA4 still installed from call 6): the 8k longformer / documents rows of bench_attention again.
source .fa4-py/device.sh; export PYTHONPATH=$PWD:$PYTHONPATH
timeout 200 python benchmarks/bench_attention.py --sizes 8192 --families longformer documents --long --other-head-dims --no-sweeps --out $OUT 2>&1 | grep -v Warn | grep -E "^\s+(longformer|documents)" | tee $OUT/bench_attention_8k_rerun.log
