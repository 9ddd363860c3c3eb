# session 26, call 1 (carry [".ab"], branch s25-fwd-lists): the lists' orders against 9309b75's forward
# (orders_fwd.py), the forward GPU tests that session 26's first call cut off, ncu of tree verification.
# Predictions: "snake" (the old assignment read from a list) ~1.00x old if the list read costs nothing;
# if it costs ~1 us per item start (sliding 32k: 31 items a program, 20 us each) ~0.95x. local4/local16
# between local1 and snake on sliding/tree (fewer programs on one K/V tile at once), documents 32k
# local1 >= local4 > local16 (working set).
export PYTHONPATH=.
timeout 240 python benchmarks/results/session26/orders_fwd.py 2>&1 | grep -v Warn | tee $OUT/orders_fwd.log
timeout 200 python -m pytest -q -x -m gpu -p no:cacheprovider tests/kernels/test_relaunch.py tests/kernels/test_plans.py \
  tests/kernels/test_gpu_graphs.py tests/kernels/test_masked_nonfinite.py 2>&1 | tail -5 > $OUT/gpu_tests_rest.log
cat $OUT/gpu_tests_rest.log
S="--section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section LaunchStats --section Occupancy"
timeout 120 ncu --clock-control none -k regex:_attn_fwd_sm90 --launch-skip 2 --launch-count 1 $S \
  -o $OUT/ncu_tree python benchmarks/ncu_targets.py inf:tree > $OUT/ncu_run.log 2>&1
ncu --import $OUT/ncu_tree.ncu-rep --page details > $OUT/ncu_tree.txt 2>&1
grep -E "Duration|DRAM Throughput|L2 Hit|Memory Throughput|Registers|Executed Ipc|SM Frequency|Waves|Grid Size" $OUT/ncu_tree.txt | head -20
