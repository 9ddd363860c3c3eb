# session 29 (branch s29-head-dims): the Hopper forward's GPU tests (every head-dim width), then the A/B
# of the Hopper forward against the portable kernel at head dims 64 and 256
export PYTHONPATH=.
timeout 380 python -m pytest -q -m gpu -p no:cacheprovider -x tests/kernels/test_flash_fwd_sm90.py > $OUT/gpu_tests_head_dims.log 2>&1
grep -E "passed|failed|FAILED|Error" $OUT/gpu_tests_head_dims.log | tail -8
timeout 190 python benchmarks/results/session29/ab_head_dims.py 2>&1 | grep -v Warn | tee $OUT/ab_head_dims.log
