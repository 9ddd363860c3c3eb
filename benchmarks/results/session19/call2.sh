#!/usr/bin/env bash
# Session 19, call 2: forward A/B with a control (HEAD twice), the snake order with the persistent
# grid for every map not bound by one row (tree), and HEAD's striding on that grid
# (stride_persistent); then the one-pass backward's GPU suite with per-thread releases.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
export AB_CASES="causal:8192 causal:16384 causal:32768 causal:131072 documents:8192 documents:131072 sliding:131072 longformer:32768 tree:8192"
timeout 230 python benchmarks/results/session18/ab_fwd.py .dev/fwd_head.py .dev/fwd_head_control.py tree .dev/fwd_stride_persistent.py 2>&1 | grep -v Warn | tee $OUT/ab_fwd_snake2.log
timeout 330 python -m pytest -q -x -m gpu -p no:cacheprovider tests/kernels/test_flash_bwd_sm90.py 2>&1 | tail -5 | tee $OUT/gpu_tests_bwd_releases.log
