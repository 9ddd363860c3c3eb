# session 25 (or the next session with a device), call 1: the forward on work lists (locality order)
# against 9309b75's snake (carry [".ab"]), then the forward GPU tests. Prediction (l2_traffic_model.py:
# K / V from DRAM 1.96 -> 0.27 GB on documents 32k, 1.06 -> 0.27 on tree 32k, unchanged elsewhere; the
# 32k documents forward does 367 GFLOP, 370 TF/s at 0.993 ms, while sliding, whose K / V already stay
# in L2, runs ~444 TF/s): documents 32k 1.10-1.25x (0.80-0.90 ms), tree 32k 1.05-1.15x, 8k and
# sliding 1.00-1.03x; causal (counter: SASS identical to HEAD's but for parameter offsets) 1.00x
# run with branch s25-fwd-lists checked out (the device copies the working tree)
export PYTHONPATH=.
export AB_CASES="documents:32768 documents:8192 sliding:32768 sliding:8192 tree:32768 tree:8192 causal:8192 documents:131072 documents:32768:32:8 sliding:8192:32:8"
timeout 220 python benchmarks/results/session25/ab_fwd.py .ab/fwd_head.py tree 2>&1 | grep -v Warn | tee $OUT/ab_fwd_lists.log
timeout 340 python -m pytest -q -x -m gpu -p no:cacheprovider tests/kernels/test_flash_fwd_sm90.py tests/kernels/test_flash_decode_sm90.py \
  tests/kernels/test_masked_nonfinite.py tests/kernels/test_relaunch.py tests/kernels/test_plans.py tests/kernels/test_gpu_graphs.py \
  2>&1 | tail -8 | tee $OUT/gpu_tests_fwd_lists.log
