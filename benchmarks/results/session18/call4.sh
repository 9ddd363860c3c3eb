#!/usr/bin/env bash
# Session 18, call 4: which half of the per-thread releases pays (ping-pong hand-over vs K/V/Q
# releases), against the committed kernel twice (noise), one process.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 300 python benchmarks/results/session18/ab_fwd.py .dev/flash_fwd_sm90_base.py .dev/fwd_base2.py tree \
  .dev/fwd_var_turn_arrive.py .dev/fwd_var_kv_arrive.py 2>&1 | grep -v Warn | tee $OUT/ab_fwd_variants.log
