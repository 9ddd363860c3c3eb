#!/usr/bin/env bash
# Session 18, call 2: graph tests without the stream-shared decode buffers (reverted), then HF
# generate with a dynamic cache (maskattn / sdpa / flex_attention alternated).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 150 python -m pytest -q -m gpu -p no:cacheprovider tests/kernels/test_gpu_graphs.py tests/kernels/test_band_row_map.py 2>&1 | tail -4 > $OUT/gpu_tests_graphs.log
cat $OUT/gpu_tests_graphs.log
timeout 420 python benchmarks/bench_transformers.py --generate --skip-train-prefill --gen-caches dynamic \
  --impls maskattn,sdpa,flex_attention --repeats 5 --warmup 1 --out $OUT/transformers_gen_dynamic 2>&1 | grep -v Warn | tee $OUT/bench_gen.log | grep -E "generate|ttft|done"
