#!/usr/bin/env bash
# Session 18, call 6 (the last minutes of device time): per-thread signals in the one-pass Hopper
# backward, A/B against the committed kernel.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 140 python benchmarks/results/session18/ab_bwd.py .dev/flash_bwd_sm90_base.py 2>&1 | grep -v Warn | tee $OUT/ab_bwd.log
