#!/usr/bin/env bash
# Session 42's second call, for the next session (same branch and carry as call1.sh): the other
# decode, graph, plug-in and paged GPU tests, paged decode main vs branch, the inference table with
# 3 interleaved rounds (and the no-mask column). ncu of decode q=1 against SDPA's kernel
# (session41/decode_pair.py) is left for a later call.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
source benchmarks/results/package_tests.sh
CAP_T=240 tests_here gpu_tests_2.log tests/kernels/test_gpu_graphs.py tests/kernels/test_flash_decode_sm90.py \
  tests/kernels/test_gpu.py tests/integrations/test_transformers.py \
  -k "decode or split or tree or graph or generate or paged or unmasked"
tail -n 4 $OUT/gpu_tests_2.log
# test_paged.py has no gpu mark (it runs on CUDA when there is one): without -m gpu
timeout 120 python -m pytest -q -x -p no:cacheprovider tests/test_paged.py > $OUT/paged_tests.log 2>&1; tail -n 2 $OUT/paged_tests.log
timeout 60 python benchmarks/results/session42/paged_ab.py > $OUT/paged_ab.log 2>&1; cat $OUT/paged_ab.log
mkdir -p $OUT/inf && timeout 150 python benchmarks/bench_inference.py --rounds 3 --out $OUT/inf > $OUT/bench_inference.log 2>&1
tail -8 $OUT/bench_inference.log
