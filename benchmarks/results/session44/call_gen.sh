#!/usr/bin/env bash
# Session 44, the call after session42/call2.sh: Hugging Face generate (256 new tokens after an
# 8k prompt, 16 layers, B=1 and B=8), maskattn / sdpa / flex_attention interleaved, dynamic cache
# first, then static; each under its own cap so one hang leaves the other's table.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
for cache in dynamic static; do
  timeout ${CAP_GEN:-270} python benchmarks/bench_transformers.py --generate --skip-train-prefill --gen-caches $cache \
    --impls maskattn,sdpa,flex_attention --repeats 3 --warmup 1 --out $OUT/gen_$cache > $OUT/gen_$cache.log 2>&1
  echo "$cache rc=$?"; grep "generate-\|ttft" $OUT/gen_$cache.log | tail -12
done
