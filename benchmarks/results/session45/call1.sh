#!/usr/bin/env bash
# Session 45, call 1 (carry .ab): session 44's ready call (tree prep A/B, the q=1 step probe,
# then ncu of decode q=1 maskattn vs SDPA.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
S=benchmarks/results/session45
M="gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,lts__t_sectors_srcunit_tex_op_read.sum,lts__t_sector_op_read_hit_rate.pct,launch__grid_size,launch__block_size,launch__registers_per_thread,launch__shared_mem_per_block_dynamic,sm__warps_active.avg.pct_of_peak_sustained_active,dram__cycles_elapsed.avg.per_second"
for w in maskattn sdpa; do
  timeout 90 ncu --clock-control none --launch-skip 3 --launch-count 10 --metrics $M \
    python $S/ncu_decode.py $w > $OUT/ncu_decode_$w.txt 2>&1
  grep -v "^==PROF==" $OUT/ncu_decode_$w.txt | grep -v "^  *launch__\|sm__warps" | tail -90
done
nvidia-smi --query-gpu=name,driver_version --format=csv > $OUT/gpu.txt
timeout 60 python benchmarks/results/session44/tree_prep_ab.py > $OUT/tree_prep_ab.log 2>&1; cat $OUT/tree_prep_ab.log
timeout 90 python benchmarks/results/session44/step_probe.py > $OUT/step_probe.log 2>&1; head -30 $OUT/step_probe.log
