# for the next session's first device call (no carry): the forward GPU suite on the merged forward
# (session 26: list entries read one item ahead, lists ordered query tile first across heads), of which
# session 26 could run only 3 tests; then the backward's list orders (orders_bwd.py: host-made lists,
# same kernel). Then session25/call2.sh (carry [".fa4-lib"]) and right after it session25/call3.sh
# (carry [".fa4-py"]) for the benchmark with FA4 columns, then session25/call4.sh (ncu).
export PYTHONPATH=.
timeout 400 python -m pytest -q -m gpu -p no:cacheprovider tests/kernels/test_flash_fwd_sm90.py \
  tests/kernels/test_masked_nonfinite.py tests/kernels/test_plans.py tests/kernels/test_relaunch.py \
  tests/kernels/test_gpu_graphs.py tests/kernels/test_flash_decode_sm90.py > $OUT/gpu_tests_fwd.log 2>&1
tail -8 $OUT/gpu_tests_fwd.log
timeout 150 python benchmarks/results/session26/orders_bwd.py 2>&1 | grep -v Warn | tee $OUT/orders_bwd.log
