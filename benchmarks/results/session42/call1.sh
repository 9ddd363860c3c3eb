#!/usr/bin/env bash
# Session 42's first call, for the next session (branch s42-unmasked-decode, which also carries s41's
# faster real_rows kernel; carry .ab with .ab/maskattn_main = main): the GPU tests of the new decode
# paths, their kernel / host times against the map path and SDPA, real_rows kernel time main vs
# branch, HF generate with a dynamic cache (maskattn / sdpa alternated).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $OUT/gpu.txt
source benchmarks/results/package_tests.sh
CAP_T=200 tests_here gpu_tests_1.log tests/kernels/test_unmasked_decode.py tests/kernels/test_real_rows.py \
  tests/kernels/test_relaunch.py
tail -n 4 $OUT/gpu_tests_1.log
timeout 60 python benchmarks/results/session42/unmasked_host.py > $OUT/unmasked_host.log 2>&1; cat $OUT/unmasked_host.log
timeout 30 python benchmarks/results/session41/rr_prep_ab.py > $OUT/rr_prep_ab.log 2>&1; cat $OUT/rr_prep_ab.log
timeout 200 python benchmarks/bench_transformers.py --generate --skip-train-prefill --gen-caches dynamic \
  --impls maskattn,sdpa --repeats 3 --warmup 1 --out $OUT/transformers_gen_dynamic 2>&1 | grep -v Warn \
  > $OUT/bench_gen.log; grep -E "generate|ttft|tok" $OUT/bench_gen.log | tail -12
