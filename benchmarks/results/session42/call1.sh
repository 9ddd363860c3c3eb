#!/usr/bin/env bash
# Session 42, call 1 (branch s42-unmasked-decode + s41's faster real_rows kernel; carry .ab with
# .ab/maskattn_main = main): GPU tests of both, unmasked decode kernel / host time against the map
# path and SDPA, real_rows kernel time main vs branch, HF generate with a dynamic cache (maskattn / sdpa).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $OUT/gpu.txt
source benchmarks/results/package_tests.sh
CAP_T=170 tests_here gpu_tests_1.log tests/kernels/test_unmasked_decode.py tests/kernels/test_real_rows.py \
  tests/kernels/test_relaunch.py tests/kernels/test_gpu_graphs.py tests/kernels/test_flash_decode_sm90.py
tail -n 4 $OUT/gpu_tests_1.log
timeout 70 python benchmarks/results/session42/unmasked_host.py > $OUT/unmasked_host.log 2>&1; cat $OUT/unmasked_host.log
timeout 40 python benchmarks/results/session41/rr_prep_ab.py > $OUT/rr_prep_ab.log 2>&1; cat $OUT/rr_prep_ab.log
timeout 210 python benchmarks/bench_transformers.py --generate --skip-train-prefill --gen-caches dynamic \
  --impls maskattn,sdpa --repeats 3 --warmup 1 --out $OUT/transformers_gen_dynamic 2>&1 | grep -v Warn \
  > $OUT/bench_gen.log; grep -E "generate|ttft|tok" $OUT/bench_gen.log | tail -12
