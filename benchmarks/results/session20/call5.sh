#!/usr/bin/env bash
# Session 20, call 5 (after call 4 staged FA4's library): the attention benchmark with FA4 /
# flex-FLASH columns at 8k and 32k, five families, head dim 128 (as session 19's call 6).
source .fa4-py/device.sh
export PYTHONPATH=$PWD:$PYTHONPATH PYTHONUNBUFFERED=1
timeout 560 python benchmarks/bench_attention.py --sizes 8192 32768 --long --other-head-dims --no-sweeps --out $OUT 2>&1 | grep -v Warn | tail -60 | tee $OUT/bench_attention.log
