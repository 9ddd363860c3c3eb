#!/usr/bin/env bash
# Session 20, call 2: backward A/B of HEAD against the snake order on a persistent grid for every
# map (bwd_snake), dK/dV leaving by TMA stores with one program per key tile (wt_item) and with
# the persistent snake grid for every map (wt_persist); then the sm90 backward GPU suite on the
# working tree (persistent grid for short columns, TMA stores).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
export AB_CASES="sliding:8192 documents:8192 causal:8192 sliding:32768 documents:32768 causal:32768 band9:32768 band18:32768 band36:32768"
timeout 240 python benchmarks/results/session20/ab_bwd.py .dev/bwd_head.py .dev/bwd_snake.py .dev/wt_item.py .dev/wt_persist.py 2>&1 | grep -v Warn | tee $OUT/ab_bwd_epi.log
timeout 330 python -m pytest -q -x -m gpu -p no:cacheprovider tests/kernels/test_flash_bwd_sm90.py 2>&1 | tail -15 | tee $OUT/gpu_tests_bwd.log
