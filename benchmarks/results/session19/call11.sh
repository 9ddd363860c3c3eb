#!/usr/bin/env bash
# Session 19, call 11 (after `bash .fa4-lib/device.sh` in call 10): the forward alone at 128k for
# causal, sliding and documents, with FA4 / flex-FLASH columns (bench_attention.py --forward-only).
source .fa4-py/device.sh
export PYTHONPATH=$PWD:$PYTHONPATH PYTHONUNBUFFERED=1
timeout 230 python benchmarks/bench_attention.py --sizes --long 131072 --families causal sliding documents \
  --other-head-dims --no-sweeps --forward-only --out $OUT 2>&1 | grep -v Warn | tail -30 | tee $OUT/bench_attention_128k.log
