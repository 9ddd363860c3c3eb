#!/usr/bin/env bash
# For session 46's first call: session 45's compile paths on the GPU (written on the CPU, never run
# on CUDA), then static-cache generate, which should now compile one graph per implementation.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv > $OUT/gpu.txt
timeout 150 python -m pytest -q -x -p no:cacheprovider tests/kernels/test_unmasked_decode.py \
  tests/integrations/test_transformers.py -k "unmasked or cut_at or checked or compiled or static_cache_step or registration or growing or graph" \
  > $OUT/compile_paths_tests.log 2>&1; echo "tests rc=$?"; tail -4 $OUT/compile_paths_tests.log
timeout 400 python benchmarks/bench_transformers.py --generate --skip-train-prefill \
  --gen-caches static --impls maskattn,sdpa,flex_attention --repeats 3 --warmup 1 --out $OUT/gen_static > $OUT/gen_static.log 2>&1
echo "static rc=$?"; grep -v "^W1\|^ \|^\[" $OUT/gen_static.log | tail -20
