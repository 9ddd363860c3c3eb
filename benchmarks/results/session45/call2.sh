#!/usr/bin/env bash
# Session 45, call 2 (warm after call 1): static-cache generate with Dynamo's limits raised.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 540 python benchmarks/bench_transformers.py --generate --skip-train-prefill \
  --gen-caches static --impls maskattn,sdpa,flex_attention --repeats 3 --warmup 1 --out $OUT/gen_static > $OUT/gen_static.log 2>&1
echo "static rc=$?"; grep "generate-\|ttft\|recompile" $OUT/gen_static.log | tail -20; tail -5 $OUT/gen_static.log
