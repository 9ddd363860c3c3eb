# Sourced by the session call scripts. ncu_source NAME KERNEL_REGEX LAUNCH_SKIP CASE profiles one
# launch of a kernel of `benchmarks/ncu_targets.py CASE` with the speed-of-light, warp-state and
# source-counter sections; writes $OUT/NAME.txt (details) and $OUT/NAME_sass.csv.gz (per-instruction
# SASS samples), capped at 180 s.
ncu_source() {
  local name=$1 kernel=$2 skip=$3 case=$4
  timeout 180 ncu --clock-control none -k regex:$kernel --launch-skip $skip --launch-count 1 \
    --section SpeedOfLight --section WarpStateStats --section SourceCounters \
    -o /tmp/$name python benchmarks/ncu_targets.py $case > /tmp/${name}_run.log 2>&1
  tail -2 /tmp/${name}_run.log
  ncu --import /tmp/$name.ncu-rep --page details > $OUT/$name.txt 2>&1
  ncu --import /tmp/$name.ncu-rep --page source --csv --print-source sass | gzip -c > $OUT/${name}_sass.csv.gz
  grep -E "Duration|Warp Cycles Per Issued" $OUT/$name.txt | head -4
}
