#!/usr/bin/env bash
# Session 20, call 1: backward A/B of HEAD against a persistent grid (plain striding), the same
# with the producer loading the next key tile's first query blocks before its K/V, and the
# counter schedule (session 19's unrun patch); a sweep of full-tile bands (1-36 tiles per key
# tile) for the per-item cost; ncu source counters of HEAD's backward on sliding 32k.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
export AB_CASES="sliding:8192 documents:8192 causal:8192 sliding:32768 documents:32768 causal:32768 band1:32768 band2:32768 band4:32768 band9:32768 band18:32768 band36:32768"
timeout 330 python benchmarks/results/session20/ab_bwd.py .dev/bwd_head.py .dev/bwd_persist.py .dev/bwd_persist_prefetch.py .dev/bwd_dyn.py 2>&1 | grep -v Warn | tee $OUT/ab_bwd_persist.log
timeout 200 ncu --clock-control none -k regex:_attn_bwd_sm90 --launch-skip 2 --launch-count 1 --section SpeedOfLight \
  --section WarpStateStats --section SourceCounters --section Occupancy --section LaunchStats -o $OUT/ncu_bwd_sliding \
  python benchmarks/ncu_targets.py bwd:sliding:32768 > $OUT/ncu_run.log 2>&1
tail -3 $OUT/ncu_run.log
ncu --import $OUT/ncu_bwd_sliding.ncu-rep --page details > $OUT/ncu_bwd_sliding.txt 2>&1
ncu --import $OUT/ncu_bwd_sliding.ncu-rep --page source --csv --print-source sass > $OUT/ncu_bwd_sliding_sass.csv 2>&1
ls -la $OUT; head -c 600 $OUT/ncu_bwd_sliding_sass.csv
