# Session 37, call 3 (what 260 s of device time allow): the plan tests on the final main, with the
# new replay test of the wide (head dim 256) backward, whose launcher's return value changed after
# its test files last ran; capped at 120 s.
export PYTHONUNBUFFERED=1
source benchmarks/results/package_tests.sh  # tests_here
CAP_T=120 tests_here gpu_tests_plans_final.log tests/kernels/test_plans.py
echo "$(grep -E 'passed|failed|error' $OUT/gpu_tests_plans_final.log | tail -1)"; grep -E "^FAILED|^E " $OUT/gpu_tests_plans_final.log | head -8
