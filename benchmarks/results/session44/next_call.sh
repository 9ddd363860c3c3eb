#!/usr/bin/env bash
# For the next session's first call (carry .ab: maskattn_main = main before PrefixTree, 02c8316;
# maskattn_s41 = session 41's code, fae1d16): the table-based tree preparation against main, the
# one-token 'per step' probe, then static-cache generate with Dynamo's limits raised (~400 s).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv > $OUT/gpu.txt
timeout 60 python benchmarks/results/session44/tree_prep_ab.py > $OUT/tree_prep_ab.log 2>&1; cat $OUT/tree_prep_ab.log
timeout 90 python benchmarks/results/session44/step_probe.py > $OUT/step_probe.log 2>&1; head -14 $OUT/step_probe.log
CAP_GEN=400 bash -c 'timeout $CAP_GEN python benchmarks/bench_transformers.py --generate --skip-train-prefill \
  --gen-caches static --impls maskattn,sdpa,flex_attention --repeats 3 --warmup 1 --out $OUT/gen_static > $OUT/gen_static.log 2>&1'
echo "static rc=$?"; grep "generate-\|ttft" $OUT/gen_static.log | tail -12
