#!/usr/bin/env bash
# Session 45, call 3: dynamic-cache generate with 5 interleaved runs (session 44's 3 runs spread
# wider than the B=8 gap), then the inference table with 5 rounds.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 330 python benchmarks/bench_transformers.py --generate --skip-train-prefill \
  --gen-caches dynamic --impls maskattn,sdpa,flex_attention --repeats 5 --warmup 1 --out $OUT/gen_dynamic > $OUT/gen_dynamic.log 2>&1
echo "dynamic rc=$?"; grep "generate-\|ttft" $OUT/gen_dynamic.log | tail -12
timeout 240 python benchmarks/bench_inference.py --rounds 5 --out $OUT > $OUT/bench_inference.log 2>&1
echo "inference rc=$?"; tail -25 $OUT/bench_inference.log
