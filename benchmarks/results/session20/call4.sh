#!/usr/bin/env bash
# Session 20, call 4: stage FA4's library for call 5, then the sm90 backward GPU suite on the
# committed tree (threshold 40, the padded-head-dim test).
bash .fa4-lib/device.sh
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 400 python -m pytest -q -m gpu -p no:cacheprovider tests/kernels/test_flash_bwd_sm90.py 2>&1 | tail -15 | tee $OUT/gpu_tests_bwd_final.log
