# Session 38, call 5 (the last the budget allows): the forward's counter-schedule tests on the final
# kernel (the early take kept for listed items only), the A/B against main, then the decode split sweep
# (fixed: a fresh map per split count).
export PYTHONPATH=. PYTHONUNBUFFERED=1
source benchmarks/results/package_tests.sh  # tests_here
CAP_T=100 tests_here gpu_tests_fwd_counter.log tests/kernels/test_flash_fwd_sm90.py -k "counter or dynamic or families"
echo "fwd: $(tail -1 $OUT/gpu_tests_fwd_counter.log)"; grep -E "^FAILED|^E " $OUT/gpu_tests_fwd_counter.log | head -5
PKGS="maskattn_main maskattn" PASS=fwd AB_ROUNDS=5 CASES="causal:32768:128 causal:8192:128 sliding:32768:128 documents:32768:128 tree:8192:128" \
  timeout 80 python benchmarks/results/session32/ab_pkgs.py > $OUT/ab_fwd_final.log 2>&1
tail -5 $OUT/ab_fwd_final.log
timeout 60 python benchmarks/tune_kernels.py --out $OUT/tune --decode-splits > $OUT/tune_splits.log 2>&1
grep splits $OUT/tune/*.log 2>/dev/null
