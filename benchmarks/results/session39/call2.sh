# Session 39, call 2: tree verification's time (issue 10). The split-KV Hopper path at forced split
# counts (tree_probe.py), then ncu's DRAM bytes and L2 hit rate of one launch of the 64-node case:
# if its two 128-row blocks each read K and V from HBM, dram bytes ~1.07 GB instead of 0.54.
export PYTHONPATH=. PYTHONUNBUFFERED=1
timeout 120 python benchmarks/results/session39/tree_probe.py > $OUT/tree_probe.log 2>&1; cat $OUT/tree_probe.log
for c in A B; do
timeout 90 ncu --clock-control none -k regex:_attn_fwd_sm90 --launch-skip 1 --launch-count 1 \
  --metrics gpu__time_duration.sum,dram__bytes_read.sum,lts__t_sector_hit_rate.pct,lts__t_sectors_srcunit_tex_op_read.sum,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,sm__throughput.avg.pct_of_peak_sustained_elapsed \
  python benchmarks/results/session39/tree_probe.py --once $c > $OUT/ncu_tree_$c.log 2>&1
grep -E "duration|bytes_read|hit_rate|srcunit|hmma|throughput" $OUT/ncu_tree_$c.log
done
