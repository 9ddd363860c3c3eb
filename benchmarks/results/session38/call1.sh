# Session 38, call 1: the plan tests owed by session 37 (incl. the wide-replay test), the decode
# split-count sweep on today's main (decode q=1 is 0.99x SDPA), and ncu source counters of the
# forward on sliding 32k (where the consumers' time goes outside the key-block loop).
# (The ncu lines moved into benchmarks/results/ncu_source.sh after the run; same command.)
export PYTHONUNBUFFERED=1 PYTHONPATH=.
source benchmarks/results/package_tests.sh  # tests_here
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/machine.log
python -c "import torch, triton; print(torch.__version__, triton.__version__)" | tee -a $OUT/machine.log
CAP_T=120 tests_here gpu_tests_plans_final.log tests/kernels/test_plans.py
echo "plans: $(grep -E 'passed|failed|error' $OUT/gpu_tests_plans_final.log | tail -1)"
grep -E "^FAILED|^E " $OUT/gpu_tests_plans_final.log | head -8
timeout 120 python benchmarks/tune_kernels.py --out $OUT/tune --decode-splits > $OUT/tune_splits.log 2>&1
grep -E 'splits' $OUT/tune_splits.log $OUT/tune/*.log 2>/dev/null | head
source benchmarks/results/ncu_source.sh
ncu_source ncu_fwd_sliding _attn_fwd_sm90 2 fwd:sliding:32768
