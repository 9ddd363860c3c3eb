#!/usr/bin/env bash
# Session 43: generate's host profile, branch then main (.ab/main_tree, carry .ab), then the GPU tests of call 1.
export PYTHONUNBUFFERED=1
for who in branch main; do
  root=$PWD; [ $who = main ] && root=$PWD/.ab/main_tree
  PKG_ROOT=$root PYTHONPATH=$PWD timeout 150 python benchmarks/results/session43/gen_profile.py 2>&1 | grep -v Warn \
    > $OUT/gen_profile_$who.log
  head -c 7000 $OUT/gen_profile_$who.log
done
export PYTHONPATH=$PWD
source benchmarks/results/package_tests.sh
CAP_T=180 tests_here gpu_tests_1.log tests/kernels/test_unmasked_decode.py tests/kernels/test_real_rows.py \
  tests/kernels/test_relaunch.py
tail -n 4 $OUT/gpu_tests_1.log
