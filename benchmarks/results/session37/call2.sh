# Session 37, call 2: cut key tiles replayed (plans.BackwardPlan): the plan tests, the backward's cut
# and dispatch tests, then the A/B portable / whole / cut / cut1 again (call 1's cut launches were not
# replayed, so its 8k rows were partly host time).
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
source benchmarks/results/package_tests.sh  # tests_here
CAP_T=200 tests_here gpu_tests_plans2.log tests/kernels/test_plans.py &
CAP_T=200 tests_here gpu_tests_bwd_cut.log tests/kernels/test_flash_bwd_sm90.py -k "cut or dispatch or persistent" &
wait
for f in $OUT/gpu_tests_*.log; do echo "$f: $(grep -E 'passed|failed|error' $f | tail -1)"; grep -E "^FAILED|^E " $f | head -8; done
PYTHONPATH=. AB_ROUNDS=7 timeout 150 python benchmarks/results/session37/bwd_column_bound.py 2>&1 | grep -v Warn \
  | tee $OUT/ab_bwd_cut_replayed.log
