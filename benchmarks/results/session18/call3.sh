#!/usr/bin/env bash
# Session 18, call 3: per-thread releases in the Hopper forward (no bar.sync before each
# single-thread arrive; ping-pong barriers as two allocations): A/B against the committed kernel
# in one process, then the Hopper forward / decode / non-finite GPU tests.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 200 python benchmarks/results/session18/ab_fwd.py .dev/flash_fwd_sm90_base.py 2>&1 | grep -v Warn | tee $OUT/ab_fwd.log
timeout 330 python -m pytest -q -x -m gpu -p no:cacheprovider tests/kernels/test_flash_fwd_sm90.py tests/kernels/test_flash_decode_sm90.py \
  tests/kernels/test_masked_nonfinite.py 2>&1 | tail -5 | tee $OUT/gpu_tests_fwd.log
