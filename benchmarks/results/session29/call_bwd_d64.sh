# session 29 (branch s29-bwd-d64): the Hopper backward's GPU tests (head dims 64 and 128), then the A/B
# of the Hopper backward against the portable kernels at head dim 64
export PYTHONPATH=.
timeout 400 python -m pytest -q -m gpu -p no:cacheprovider -x tests/kernels/test_flash_bwd_sm90.py > $OUT/gpu_tests_bwd_d64.log 2>&1
grep -E "passed|failed|FAILED|Error" $OUT/gpu_tests_bwd_d64.log | tail -8
timeout 150 python benchmarks/results/session29/ab_bwd_d64.py 2>&1 | grep -v Warn | tee $OUT/ab_bwd_d64.log
