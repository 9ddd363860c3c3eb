#!/usr/bin/env bash
# Session 44, first call (carry .ab = main before PrefixTree): the tree step's mask preparation A/B,
# the decode / graph / Hopper-decode / plug-in GPU tests and tests/test_paged.py (no gpu mark: run
# without -m gpu) that session 43 could not run, then the inference table with 3 interleaved rounds.
# Session 42's paged_ab.py is left out: .ab now holds the same paged code as this checkout.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $OUT/gpu.txt
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/gpu.txt
timeout 60 python benchmarks/results/session44/tree_prep_ab.py > $OUT/tree_prep_ab.log 2>&1; cat $OUT/tree_prep_ab.log
source benchmarks/results/package_tests.sh
CAP_T=200 tests_here gpu_tests_2.log tests/kernels/test_gpu_graphs.py tests/kernels/test_flash_decode_sm90.py \
  tests/kernels/test_gpu.py tests/integrations/test_transformers.py \
  -k "decode or split or tree or graph or generate or paged or unmasked"
tail -n 3 $OUT/gpu_tests_2.log
timeout 100 python -m pytest -q -x -p no:cacheprovider tests/test_paged.py > $OUT/paged_tests.log 2>&1; tail -n 2 $OUT/paged_tests.log
mkdir -p $OUT/inf && timeout 150 python benchmarks/bench_inference.py --rounds 3 --out $OUT/inf > $OUT/bench_inference.log 2>&1
tail -8 $OUT/bench_inference.log
