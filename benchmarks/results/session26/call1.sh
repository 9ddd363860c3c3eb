# session 26, call 1 (carry [".ab"], branch s25-fwd-lists + list entries read one item ahead): the lists'
# orders and the read-ahead against 9309b75's forward (orders_fwd.py), then the forward GPU tests.
# Predictions: snake_nopf (the old assignment, entries read at the item's start) ~0.95x old on sliding 32k
# if a list read costs ~1 us per item start (31 items a program, 20 us each), snake (read ahead) ~1.00x;
# local4 / local16 between local1 and snake on sliding and tree (fewer programs on one K/V tile at once);
# documents 32k local1 >= local4 > local16 (K/V working set).
export PYTHONPATH=.
CASES="tree:32768 documents:32768 tree:8192 documents:8192 documents:32768:32:8" \
  timeout 150 python benchmarks/results/session26/orders_fwd.py 2>&1 | grep -v Warn | tee $OUT/orders_fwd.log
# the forward GPU tests only if time is left (device budget): a later call
# As run: call 1 with CASES starting at sliding:32768 (it stopped after that case on a wrong assertion,
# orders_fwd_sliding.log); call 2 as above plus 100 s of test_flash_fwd_sm90.py (1 test); call 3 105 s of
# test_flash_fwd_sm90.py + test_masked_nonfinite.py (3 tests passed, gpu_tests_peek.log)
