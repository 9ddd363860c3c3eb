# session 30, call 2 (branch s30-bwd-wide): the head-dim-64 / 128 Hopper backward tests (their producer
# was refactored for the wide kernel), then the inference table with static flex at every case
export PYTHONPATH=.
timeout 330 python -m pytest -q -m gpu -p no:cacheprovider tests/kernels/test_flash_bwd_sm90.py > $OUT/gpu_tests_bwd.log 2>&1
grep -E "passed|failed|FAILED|Error" $OUT/gpu_tests_bwd.log | tail -8
timeout 240 python benchmarks/bench_inference.py --out $OUT 2>&1 | grep -v Warn | tail -30
