#!/usr/bin/env bash
# Session 19, call 4: the dynamic schedule without per-thread releases (dyn_notr) on the long-row
# maps; then the GPU tests that call 3's time limit cut (non-finite, relaunch) and the schedule
# tests again.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
export AB_CASES="longformer:32768 longformer:8192 causal:32768 causal:8192 causal:131072"
timeout 120 python benchmarks/results/session18/ab_fwd.py .dev/fwd_head.py tree .dev/fwd_dyn_notr.py 2>&1 | grep -v Warn | tee $OUT/ab_fwd_dyn_notr.log
timeout 200 python -m pytest -q -m gpu -p no:cacheprovider tests/kernels/test_masked_nonfinite.py tests/kernels/test_relaunch.py \
  "tests/kernels/test_flash_fwd_sm90.py::test_persistent_grid_many_items_per_program" \
  "tests/kernels/test_flash_fwd_sm90.py::test_persistent_grid_nan_some_rows_see" 2>&1 | tail -4 | tee $OUT/gpu_tests_fwd_rest.log
