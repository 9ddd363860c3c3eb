# Session 37, call 3: the whole backward and wide-backward GPU test files on the landed main (cut
# launches replayed), two processes capped at 190 s.
export PYTHONUNBUFFERED=1
source benchmarks/results/package_tests.sh  # tests_here
CAP_T=190 tests_here gpu_tests_bwd_final.log tests/kernels/test_flash_bwd_sm90.py &
CAP_T=190 tests_here gpu_tests_bwd_wide_final.log tests/kernels/test_flash_bwd_sm90_wide.py tests/kernels/test_plans.py &
wait
for f in $OUT/gpu_tests_*.log; do echo "$f: $(grep -E 'passed|failed|error' $f | tail -1)"; grep -E "^FAILED|^E " $f | head -8; done
