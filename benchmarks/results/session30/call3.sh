# session 30, call 3: the wide backward's remaining GPU tests (the strided test's mask fixed onto the GPU),
# then its grid choice at head dim 256 (persistent lists or one program per key tile)
export PYTHONPATH=. PYTHONUNBUFFERED=1
timeout 150 python -m pytest -q -m gpu -p no:cacheprovider tests/kernels/test_flash_bwd_sm90_wide.py -k "strided or dispatch" > $OUT/gpu_tests_bwd_wide_rest.log 2>&1
grep -E "passed|failed|FAILED|Error" $OUT/gpu_tests_bwd_wide_rest.log | tail -8
timeout 200 python benchmarks/results/session30/ab_wide_grid.py 2>&1 | grep -v Warn | tee $OUT/ab_wide_grid.log
