# Session 38, call 2: GPU tests of the forward with the NaN flags kept per thread (nan_flags) and the
# next item decoded under the last P V (this checkout), then the forward A/B of main / nan_flags /
# both (carry .ab: .ab/maskattn_main = the code before session 38, .ab/maskattn_nan = nan_flags alone).
export PYTHONUNBUFFERED=1 PYTHONPATH=.
source benchmarks/results/package_tests.sh  # tests_here
CAP_T=${CAP_T:-200} tests_here gpu_tests_fwd.log tests/kernels/test_flash_fwd_sm90.py tests/kernels/test_masked_nonfinite.py
echo "fwd: $(grep -E 'passed|failed|error' $OUT/gpu_tests_fwd.log | tail -1)"
grep -E "^FAILED|^E " $OUT/gpu_tests_fwd.log | head -8
PKGS="maskattn_main maskattn_nan maskattn" PASS=fwd AB_ROUNDS=${AB_ROUNDS:-3} timeout 180 \
  python benchmarks/results/session32/ab_pkgs.py > $OUT/ab_fwd_boundary.log 2>&1
tail -10 $OUT/ab_fwd_boundary.log
