# for a later device session (branch s29-bwd-wide): the wide backward's GPU tests and its A/B (one call),
# then in a second call the head-dim-64 / 128 backward tests (their producer was refactored: SASS identical)
export PYTHONPATH=.
timeout 380 python -m pytest -q -m gpu -p no:cacheprovider -x tests/kernels/test_flash_bwd_sm90_wide.py > $OUT/gpu_tests_bwd_wide.log 2>&1
grep -E "passed|failed|FAILED|Error" $OUT/gpu_tests_bwd_wide.log | tail -8
timeout 200 python benchmarks/results/session29/ab_bwd_wide.py 2>&1 | grep -v Warn | tee $OUT/ab_bwd_wide.log
# second call: timeout 330 python -m pytest -q -m gpu -p no:cacheprovider tests/kernels/test_flash_bwd_sm90.py
