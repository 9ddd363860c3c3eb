#!/usr/bin/env bash
# Session 19, call 6 (after call 5 staged FA4's library with `bash .fa4-lib/device.sh`): the
# attention benchmark with FA4 / flex-FLASH columns at 8k and 32k, five families, head dim 128
# (no sweeps, no 128k rows, no other head dims: device time).
source .fa4-py/device.sh
export PYTHONPATH=$PWD:$PYTHONPATH PYTHONUNBUFFERED=1
timeout 540 python benchmarks/bench_attention.py --sizes 8192 32768 --long --other-head-dims --no-sweeps --out $OUT 2>&1 | grep -v Warn | tail -60 | tee $OUT/bench_attention.log
