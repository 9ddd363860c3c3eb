#!/usr/bin/env bash
# Second call (~330 s): static-cache generate, maskattn / sdpa / flex_attention alternated, B=1 and
# B=8 (8k prompt, 256 new tokens), compiled by transformers; graph counts per implementation.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv > $OUT/gpu.txt
timeout 330 python benchmarks/bench_transformers.py --generate --skip-train-prefill \
  --gen-caches static --impls maskattn,sdpa,flex_attention --repeats 3 --warmup 1 --out $OUT/gen_static > $OUT/gen_static.log 2>&1
echo "static rc=$?"; grep -v "^W1\|^ \|^\[" $OUT/gen_static.log | tail -20
