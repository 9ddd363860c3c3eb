# session 34, call 2 (if the budget allows): where tree verification's packed kernel stalls.
# Session 14's ncu (H200, base clocks) saw DRAM 23%, tensor pipe 40%, issue slots 44%: neither bound.
# A program's key tile takes 1.8 us with 64 programs busy and 3.05 us with 128, with K / V read from
# HBM once. Warp states and source counters say which instructions the consumers wait at (the S /
# O wgmma waits = the tensor pipe or the ring; the k_ready / v_ready mbarrier waits = the loads).
export PYTHONPATH=.
S="--section SpeedOfLight --section MemoryWorkloadAnalysis --section MemoryWorkloadAnalysis_Tables --section WarpStateStats --section SourceCounters --section LaunchStats"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 200 ncu --clock-control none -k regex:_attn_fwd_sm90 --launch-skip 2 --launch-count 1 $S \
  -o $OUT/ncu_tree python benchmarks/ncu_targets.py inf:tree > $OUT/ncu_run.log 2>&1
tail -3 $OUT/ncu_run.log
ncu --import $OUT/ncu_tree.ncu-rep --page details > $OUT/ncu_tree.txt 2>&1
ncu --import $OUT/ncu_tree.ncu-rep --page source --csv --print-source sass > $OUT/ncu_tree_sass.csv 2>&1
grep -E "Duration|DRAM Throughput|L2 Hit|Tensor|Issue Slots|Stall|Warp Cycles" $OUT/ncu_tree.txt | head -30
