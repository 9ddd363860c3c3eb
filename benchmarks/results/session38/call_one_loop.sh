# Next session: the forward's items in one loop of turns (`session38/fwd_one_loop_untested.diff`, on
# top of session 38's main). Carry .ab with .ab/maskattn_main = session 38's main
# (`git archive <session 38 head> maskattn`). Apply the diff to this checkout first:
#   git apply benchmarks/results/session38/fwd_one_loop_untested.diff
# A smoke test under a short cap first (a hang shows as a timeout, not as a silent cap of the suite).
export PYTHONPATH=. PYTHONUNBUFFERED=1
source benchmarks/results/package_tests.sh  # tests_here
CAP_T=90 tests_here smoke.log tests/kernels/test_flash_fwd_sm90.py -k "persistent and sliding and static and 128"
echo "smoke: $(tail -1 $OUT/smoke.log)"
grep -q passed $OUT/smoke.log || exit 1
CAP_T=240 tests_here gpu_tests_one_loop.log tests/kernels/test_flash_fwd_sm90.py tests/kernels/test_flash_decode_sm90.py \
  -k "persistent or nan or counter or strided or scale or decode or packed or tree or families"
echo "tests: $(tail -1 $OUT/gpu_tests_one_loop.log)"; grep -E "^FAILED|^E " $OUT/gpu_tests_one_loop.log | head -5
PKGS="maskattn_main maskattn" PASS=fwd AB_ROUNDS=5 timeout 150 python benchmarks/results/session32/ab_pkgs.py \
  > $OUT/ab_fwd_one_loop.log 2>&1
tail -9 $OUT/ab_fwd_one_loop.log
