#!/usr/bin/env bash
# Session 18, call 1: GPU tests of session 17's band-map kernel and stream-shared decode buffers,
# host A/B against the commit before them (.dev/old), inference table.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $OUT/gpu.txt
timeout 300 python -m pytest -q -m gpu -p no:cacheprovider tests/kernels/test_band_row_map.py tests/test_compile_row.py \
  tests/kernels/test_relaunch.py tests/kernels/test_relaunch_host.py tests/kernels/test_flash_decode_sm90.py \
  tests/kernels/test_gpu_graphs.py tests/kernels/test_row_map.py tests/test_paged.py tests/integrations/test_transformers.py \
  2>&1 | tail -25 > $OUT/gpu_tests.log
for r in 1 2; do
  for p in old new; do
    pkg=$PWD; [ $p = old ] && pkg=$PWD/.dev/old
    timeout 60 python benchmarks/results/session17/host_ab.py --pkg $pkg --label $p 2>&1 | grep -v Warning
  done
done > $OUT/host_ab.log 2>&1
timeout 200 python benchmarks/bench_inference.py --out $OUT > $OUT/bench_inference.log 2>&1
cat $OUT/gpu_tests.log | tail -5; cat $OUT/host_ab.log; tail -30 $OUT/bench_inference.log
