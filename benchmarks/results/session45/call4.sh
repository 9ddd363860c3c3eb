#!/usr/bin/env bash
# Session 45, call 4 (carry .ab): the decode grid order A/B against main, the decode GPU tests on
# this checkout, then static-cache generate (B=1, B=8) with what is left.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
S=benchmarks/results/session45
nvidia-smi --query-gpu=name,driver_version --format=csv > $OUT/gpu.txt
timeout 80 python $S/decode_order_ab.py > $OUT/decode_order_ab.log 2>&1; echo "ab rc=$?"; cat $OUT/decode_order_ab.log | grep -v Warn
timeout 140 python -m pytest -q -x -p no:cacheprovider tests/kernels/test_gpu.py tests/kernels/test_unmasked_decode.py \
  tests/test_paged.py tests/kernels/test_relaunch.py -k "decode or split or paged or unmasked or relaunch" > $OUT/decode_tests.log 2>&1
echo "tests rc=$?"; tail -4 $OUT/decode_tests.log
timeout 300 python benchmarks/bench_transformers.py --generate --skip-train-prefill \
  --gen-caches static --impls maskattn,sdpa,flex_attention --repeats 2 --warmup 1 --out $OUT/gen_static > $OUT/gen_static.log 2>&1
echo "static rc=$?"; grep -v "^W1\|^ \|^\[" $OUT/gen_static.log | tail -25
