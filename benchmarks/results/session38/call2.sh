# Session 38, call 2: GPU tests of the forward with the NaN flags kept per thread (nan_flags), then
# the forward A/B against main (carry .ab: .ab/maskattn_main = the commit before the change).
export PYTHONUNBUFFERED=1 PYTHONPATH=.
source benchmarks/results/package_tests.sh  # tests_here
CAP_T=${CAP_T:-200} tests_here gpu_tests_fwd_nan.log tests/kernels/test_flash_fwd_sm90.py tests/kernels/test_masked_nonfinite.py
echo "fwd: $(grep -E 'passed|failed|error' $OUT/gpu_tests_fwd_nan.log | tail -1)"
grep -E "^FAILED|^E " $OUT/gpu_tests_fwd_nan.log | head -8
PKGS="maskattn_main maskattn" PASS=fwd AB_ROUNDS=${AB_ROUNDS:-3} timeout 150 \
  python benchmarks/results/session32/ab_pkgs.py > $OUT/ab_fwd_nan.log 2>&1
cat $OUT/ab_fwd_nan.log | tail -10
