# session 26, call 1 (carry [".ab"], branch s25-fwd-lists + list entries read one item ahead): the lists'
# orders and the read-ahead against 9309b75's forward (orders_fwd.py), then the forward GPU tests.
# Predictions: snake_nopf (the old assignment, entries read at the item's start) ~0.95x old on sliding 32k
# if a list read costs ~1 us per item start (31 items a program, 20 us each), snake (read ahead) ~1.00x;
# local4 / local16 between local1 and snake on sliding and tree (fewer programs on one K/V tile at once);
# documents 32k local1 >= local4 > local16 (K/V working set).
export PYTHONPATH=.
timeout 170 python benchmarks/results/session26/orders_fwd.py 2>&1 | grep -v Warn | tee $OUT/orders_fwd.log
timeout 150 python -m pytest -q -x -m gpu -p no:cacheprovider tests/kernels/test_flash_fwd_sm90.py \
  tests/kernels/test_masked_nonfinite.py tests/kernels/test_plans.py > $OUT/gpu_tests.log 2>&1
tail -5 $OUT/gpu_tests.log
