# Session 38, call 6 (if a machine starts with the last ~240 s): ncu source counters of the one-pass
# backward on sliding 32k, to split a key tile's time into its block loops and its per-tile code as
# call 1 did for the forward (`session38/logs/ncu_fwd_sliding*`).
export PYTHONPATH=.
S="--section SpeedOfLight --section WarpStateStats --section SourceCounters"
timeout 150 ncu --clock-control none -k regex:_attn_bwd_sm90 --launch-skip 1 --launch-count 1 $S \
  -o /tmp/ncu_bwd_sliding python benchmarks/ncu_targets.py bwd:sliding:32768 > /tmp/ncu_run.log 2>&1
tail -2 /tmp/ncu_run.log
ncu --import /tmp/ncu_bwd_sliding.ncu-rep --page details > $OUT/ncu_bwd_sliding.txt 2>&1
ncu --import /tmp/ncu_bwd_sliding.ncu-rep --page source --csv --print-source sass > /tmp/sass.csv 2>&1
gzip -c /tmp/sass.csv > $OUT/ncu_bwd_sliding_sass.csv.gz
grep -E "Duration|Warp Cycles Per Issued" $OUT/ncu_bwd_sliding.txt | head -4
