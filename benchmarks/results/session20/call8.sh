#!/usr/bin/env bash
# Session 20, call 8: the final backward file (host-side change only: when dK/dV go through
# buffers) on the persistent-grid, padded-head-dim, dispatch and strided tests.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 250 python -m pytest -q -m gpu -p no:cacheprovider tests/kernels/test_flash_bwd_sm90.py -k "persistent or padded or dispatch or strided or fully_masked" 2>&1 | tail -5 | tee $OUT/gpu_tests_bwd_last.log
