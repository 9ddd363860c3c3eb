# session 23, device call 2: the rest of the backward / plans GPU tests (call 1's run stopped at its
# timeout after 37 passing), then the 8k rows of bench_attention (fwd and fwd+bwd, same process)
export PYTHONPATH=.
timeout 200 python -m pytest -q -x -p no:cacheprovider tests/kernels/test_plans.py \
  "tests/kernels/test_flash_bwd_sm90.py::test_fully_masked_rows" "tests/kernels/test_flash_bwd_sm90.py::test_dispatch" \
  2>&1 | tail -15 > $OUT/gpu_tests_bwd_rest.log; tail -3 $OUT/gpu_tests_bwd_rest.log
mkdir -p $OUT/bench
timeout 270 python benchmarks/bench_attention.py --sizes 8192 --long --other-head-dims --no-sweeps \
  --families causal sliding documents --out $OUT/bench 2>&1 | tail -30 | tee $OUT/bench8k.log
