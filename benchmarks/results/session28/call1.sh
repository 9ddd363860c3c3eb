# session 28, call 1 (branch s28-both = s27-l2-sections + s27-fwd-item-ahead, carry [".ab"]): the GPU tests
# both changes touch (forward and backward Hopper kernels), then the A/B of the L2 sections
export PYTHONPATH=.
timeout 300 python -m pytest -q -m gpu -p no:cacheprovider tests/kernels/test_flash_fwd_sm90.py tests/kernels/test_flash_bwd_sm90.py \
  -k "sections or persistent or families or lengths or strided or nan" > $OUT/gpu_tests_both.log 2>&1
grep -E "passed|failed|FAILED|Error" $OUT/gpu_tests_both.log | tail -15
AB_ROUNDS=3 FWD_CASES="causal:32768:16:16 causal:131072:16:16 causal:8192:16:16 causal:32768:32:8 longformer:32768:16:16" \
  timeout 275 python benchmarks/results/session27/ab_sections.py 2>&1 | grep -v Warn | tee $OUT/ab_sections.log
