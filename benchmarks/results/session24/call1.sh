# session 24, device call 1: clocks; backward alone on documents / sliding 32k (ours, det, flex static and
# automatic-dynamic); ncu of our Hopper backward and of flex's backward on documents 32k.
export PYTHONPATH=.
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.sm,power.limit,power.max_limit,memory.total --format=csv > $OUT/gpu.txt 2>&1
timeout 150 python benchmarks/results/session24/flex_dynamic.py > $OUT/flex_dynamic.log 2>&1; tail -6 $OUT/flex_dynamic.log
S="--section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section WarpStateStats --section LaunchStats --section Occupancy"
timeout 170 ncu --clock-control none -k regex:_attn_bwd_sm90 --launch-skip 2 --launch-count 1 $S --section SourceCounters \
  -o $OUT/ncu_ours python benchmarks/ncu_targets.py bwd:documents:32768 > $OUT/ncu_run.log 2>&1
timeout 170 ncu --clock-control none -k regex:triton_tem --launch-skip 2 --launch-count 1 $S \
  -o $OUT/ncu_flex python benchmarks/ncu_targets.py flexbwd:documents:32768 >> $OUT/ncu_run.log 2>&1
tail -4 $OUT/ncu_run.log
for r in ours flex; do ncu --import $OUT/ncu_$r.ncu-rep --page details > $OUT/ncu_$r.txt 2>&1; done
ncu --import $OUT/ncu_ours.ncu-rep --page source --csv --print-source sass > $OUT/ncu_ours_sass.csv 2>&1
grep -E "Duration|Registers|Tensor|Issue Slots|Executed Ipc|SM Frequency|Throughput" $OUT/ncu_ours.txt $OUT/ncu_flex.txt | head -40
ls -la $OUT
