#!/usr/bin/env bash
# Session 19, call 3: forward A/B: HEAD vs the tree (dynamic schedule, items from a counter, for
# long-row maps; static snake for short rows), the for-loop snake with HEAD's grid rule
# (snake_oldrule, call 1) and the dynamic schedule for every map (dyn_all); then the Hopper
# forward / decode / non-finite / relaunch GPU tests on the tree.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
export AB_CASES="causal:8192 causal:16384 causal:32768 causal:131072 sliding:8192 sliding:32768 documents:8192 documents:32768 longformer:8192 longformer:32768 tree:8192 tree:32768"
timeout 200 python benchmarks/results/session18/ab_fwd.py .dev/fwd_head.py tree .dev/fwd_snake_oldrule.py .dev/fwd_dyn_all.py 2>&1 | grep -v Warn | tee $OUT/ab_fwd_dynamic.log
timeout 360 python -m pytest -q -x -m gpu -p no:cacheprovider tests/kernels/test_flash_fwd_sm90.py tests/kernels/test_flash_decode_sm90.py \
  tests/kernels/test_masked_nonfinite.py tests/kernels/test_relaunch.py 2>&1 | tail -8 | tee $OUT/gpu_tests_fwd_dynamic.log
