# Session 39, call 1: the forward's items in one loop of turns (session 38's
# fwd_one_loop_untested.diff, merged onto session 38's main), tested and timed against that main
# (.ab/maskattn_main). A smoke test under a short cap first: a hang shows as a timeout.
export PYTHONPATH=. PYTHONUNBUFFERED=1
source benchmarks/results/package_tests.sh  # tests_here
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
CAP_T=90 tests_here smoke.log tests/kernels/test_flash_fwd_sm90.py -k "persistent and sliding and static and 128"
echo "smoke: $(tail -1 $OUT/smoke.log)"
grep -q passed $OUT/smoke.log || exit 1
CAP_T=200 tests_here gpu_tests_one_loop.log tests/kernels/test_flash_fwd_sm90.py tests/kernels/test_flash_decode_sm90.py \
  -k "persistent or nan or counter or strided or scale or decode or packed or tree or families"
echo "tests: $(tail -1 $OUT/gpu_tests_one_loop.log)"; grep -E "^FAILED|^E " $OUT/gpu_tests_one_loop.log | head -5
CASES="sliding:32768:128 documents:32768:128 tree:8192:128 causal:32768:128 sliding:8192:128 causal:8192:128 \
sliding:32768:64 sliding:32768:256 documents:32768:256" \
PKGS="maskattn_main maskattn" PASS=fwd AB_ROUNDS=5 timeout 200 python benchmarks/results/session32/ab_pkgs.py \
  > $OUT/ab_fwd_one_loop.log 2>&1
tail -10 $OUT/ab_fwd_one_loop.log
