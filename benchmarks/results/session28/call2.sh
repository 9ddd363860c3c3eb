# session 28, call 2 (branch s28-both, where session27/ab_item_ahead.py lives; carry [".ab"]), right after call 1: the A/B of the item-ahead lists, then the
# graph / plan tests of the static schedule
export PYTHONPATH=.
timeout 240 python benchmarks/results/session27/ab_item_ahead.py 2>&1 | grep -v Warn | tee $OUT/ab_item_ahead.log
timeout 330 python -m pytest -q -m gpu -p no:cacheprovider tests/kernels/test_gpu_graphs.py tests/kernels/test_plans.py \
  > $OUT/gpu_tests_graphs_plans.log 2>&1
grep -E "passed|failed|FAILED|Error" $OUT/gpu_tests_graphs_plans.log | tail -15
