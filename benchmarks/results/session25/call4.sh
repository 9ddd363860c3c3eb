# session 25's plan, call 4: ncu of the forward (locality lists) on documents 32k, of the current
# backward on sliding 32k (where issue 9's gap to flex-FA4 is largest, ~0.83x fwd+bwd estimated) and of
# tree verification's packed kernel.
# What to read: DRAM throughput and L2 hit rate (the forward's should fall from the snake's ~2 GB of K/V
# per call), tensor pipe, the consumers' stall reasons per loop (source counters)
export PYTHONPATH=.
S="--section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section WarpStateStats --section LaunchStats --section Occupancy"
timeout 170 ncu --clock-control none -k regex:_attn_fwd_sm90 --launch-skip 2 --launch-count 1 $S \
  -o $OUT/ncu_fwd python benchmarks/ncu_targets.py fwd:documents:32768 > $OUT/ncu_run.log 2>&1
timeout 200 ncu --clock-control none -k regex:_attn_bwd_sm90 --launch-skip 2 --launch-count 1 $S --section SourceCounters \
  -o $OUT/ncu_bwd python benchmarks/ncu_targets.py bwd:sliding:32768 >> $OUT/ncu_run.log 2>&1
# tree verification (issue 10: 2.24x the floor, bar 1.5x): is each K / V tile read from DRAM once per KV
# head (the two 128-row blocks sharing it through L2: ~0.54 GB) or twice (~1.07 GB, ~2.7 TB/s)?
timeout 120 ncu --clock-control none -k regex:_attn_fwd_sm90 --launch-skip 2 --launch-count 1 $S \
  -o $OUT/ncu_tree python benchmarks/ncu_targets.py inf:tree >> $OUT/ncu_run.log 2>&1
tail -4 $OUT/ncu_run.log
for r in fwd bwd tree; do ncu --import $OUT/ncu_$r.ncu-rep --page details > $OUT/ncu_$r.txt 2>&1; done
ncu --import $OUT/ncu_bwd.ncu-rep --page source --csv --print-source sass > $OUT/ncu_bwd_sass.csv 2>&1
grep -E "Duration|DRAM Throughput|L2 Hit|Registers|Tensor|Executed Ipc|SM Frequency" $OUT/ncu_fwd.txt $OUT/ncu_bwd.txt $OUT/ncu_tree.txt | head -40
