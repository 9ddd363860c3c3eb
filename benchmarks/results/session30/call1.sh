# session 30, call 1 (branch s30-bwd-wide = session 29's untested diff): the wide backward's GPU tests, then its A/B
export PYTHONPATH=. PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 360 python -m pytest -q -m gpu -p no:cacheprovider -x tests/kernels/test_flash_bwd_sm90_wide.py > $OUT/gpu_tests_bwd_wide.log 2>&1
grep -E "passed|failed|FAILED|Error|error" $OUT/gpu_tests_bwd_wide.log | tail -12
AB_ROUNDS=${AB_ROUNDS:-3} timeout 200 python benchmarks/results/session29/ab_bwd_wide.py 2>&1 | grep -v Warn | tee $OUT/ab_bwd_wide.log
