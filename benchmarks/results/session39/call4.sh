# Session 39, call 4: split-KV items (tree verification) with the forward's two passes (V handed
# over uncleaned, redo on NaN) instead of one (every V block landed and cleaned before the next
# load): session 38's main (.ab/maskattn_main) against this checkout, one process; the decode
# kernel's GPU tests (NaN cases included); the inference table.
export PYTHONPATH=. PYTHONUNBUFFERED=1
source benchmarks/results/package_tests.sh  # tests_here
PKGS="maskattn_main maskattn" CASES="A B C A4" timeout 120 python benchmarks/results/session39/tree_probe.py \
  > $OUT/tree_two_passes.log 2>&1; cat $OUT/tree_two_passes.log
CAP_T=100 tests_here gpu_tests_two_passes.log tests/kernels/test_flash_decode_sm90.py
echo "tests: $(tail -1 $OUT/gpu_tests_two_passes.log)"; grep -E "^FAILED|^E " $OUT/gpu_tests_two_passes.log | head -5
mkdir -p $OUT/inf && timeout 150 python benchmarks/bench_inference.py --out $OUT/inf > $OUT/bench_inference.log 2>&1
tail -12 $OUT/bench_inference.log
