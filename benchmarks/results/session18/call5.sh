#!/usr/bin/env bash
# Session 18, call 5: per-thread releases on the persistent grid only (constexpr THREAD_RELEASE):
# A/B against the committed kernel, then the Hopper forward / decode / non-finite GPU tests.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 150 python benchmarks/results/session18/ab_fwd.py .dev/flash_fwd_sm90_base.py tree 2>&1 | grep -v Warn | tee $OUT/ab_fwd_final.log
timeout 330 python -m pytest -q -x -m gpu -p no:cacheprovider tests/kernels/test_flash_fwd_sm90.py tests/kernels/test_flash_decode_sm90.py \
  tests/kernels/test_masked_nonfinite.py tests/kernels/test_relaunch.py 2>&1 | tail -5 | tee $OUT/gpu_tests_fwd_final.log
