# session 30, call 4: the wide backward on one program per key tile everywhere (ab_wide_grid.log):
# its GPU tests again, then the A/B against the portable kernels on the cases whose grid changed
export PYTHONPATH=. PYTHONUNBUFFERED=1
timeout 280 python -m pytest -q -m gpu -p no:cacheprovider -x tests/kernels/test_flash_bwd_sm90_wide.py > $OUT/gpu_tests_bwd_wide_per_tile.log 2>&1
grep -E "passed|failed|FAILED|Error" $OUT/gpu_tests_bwd_wide_per_tile.log | tail -8
CASES="causal:8192:256 sliding:32768:256 documents:32768:256 sliding:8192:256 documents:8192:256" AB_ROUNDS=3 \
  timeout 140 python benchmarks/results/session29/ab_bwd_wide.py 2>&1 | grep -v Warn | tee $OUT/ab_bwd_wide_per_tile.log
