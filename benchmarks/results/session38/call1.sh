# Session 38, call 1: the plan tests owed by session 37 (incl. the wide-replay test), the decode
# split-count sweep on today's main (decode q=1 is 0.99x SDPA), and ncu source counters of the
# forward on sliding 32k (where the consumers' time goes outside the key-block loop).
export PYTHONUNBUFFERED=1 PYTHONPATH=.
source benchmarks/results/package_tests.sh  # tests_here
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/machine.log
python -c "import torch, triton; print(torch.__version__, triton.__version__)" | tee -a $OUT/machine.log
CAP_T=120 tests_here gpu_tests_plans_final.log tests/kernels/test_plans.py
echo "plans: $(grep -E 'passed|failed|error' $OUT/gpu_tests_plans_final.log | tail -1)"
grep -E "^FAILED|^E " $OUT/gpu_tests_plans_final.log | head -8
timeout 120 python benchmarks/tune_kernels.py --out $OUT/tune --decode-splits > $OUT/tune_splits.log 2>&1
grep -E 'splits' $OUT/tune_splits.log $OUT/tune/*.log 2>/dev/null | head
S="--section SpeedOfLight --section WarpStateStats --section SourceCounters"
timeout 180 ncu --clock-control none -k regex:_attn_fwd_sm90 --launch-skip 2 --launch-count 1 $S \
  -o /tmp/ncu_fwd_sliding python benchmarks/ncu_targets.py fwd:sliding:32768 > /tmp/ncu_run.log 2>&1
tail -2 /tmp/ncu_run.log
ncu --import /tmp/ncu_fwd_sliding.ncu-rep --page details > $OUT/ncu_fwd_sliding.txt 2>&1
ncu --import /tmp/ncu_fwd_sliding.ncu-rep --page source --csv --print-source sass > /tmp/sass.csv 2>&1
gzip -c /tmp/sass.csv > $OUT/ncu_fwd_sliding_sass.csv.gz
grep -E "Duration|Tensor|Issue Slots|Warp Cycles|No Eligible" $OUT/ncu_fwd_sliding.txt | head -12
