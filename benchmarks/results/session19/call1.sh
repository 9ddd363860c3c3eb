#!/usr/bin/env bash
# Session 19, call 1: A/Bs in one process each.
# Forward: HEAD vs the snake item order with the persistent grid for every map not bound by one
# row (tree), the same without per-thread releases on long-row maps (snake_notr), and the snake
# with HEAD's persistent rule (snake_oldrule).
# Backward: per-thread releases of the Q/dO ring and dS buffers (dS hand-over kept on the barrier).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
timeout 270 python benchmarks/results/session18/ab_fwd.py .dev/fwd_head.py tree .dev/fwd_snake_notr.py .dev/fwd_snake_oldrule.py 2>&1 | grep -v Warn | tee $OUT/ab_fwd_snake.log
timeout 200 python benchmarks/results/session18/ab_bwd.py .dev/flash_bwd_sm90_base.py 2>&1 | grep -v Warn | tee $OUT/ab_bwd_releases.log
