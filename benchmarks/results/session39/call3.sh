# Session 39, call 3: the split-KV items' L2 prefetch (flash_fwd_sm90.L2_AHEAD_PACKED,
# prefetch_rows_l2): tree-verification shapes at prefetch distances 0 (session 38's kernel) / 2 / 4
# in one process, interleaved; then the decode / forward GPU tests; then the inference table.
export PYTHONPATH=. PYTHONUNBUFFERED=1
source benchmarks/results/package_tests.sh  # tests_here
AHEADS="0 2 4" CASES="A B C A4" timeout 150 python benchmarks/results/session39/tree_probe.py \
  > $OUT/tree_prefetch.log 2>&1; cat $OUT/tree_prefetch.log
CAP_T=150 tests_here gpu_tests_prefetch.log tests/kernels/test_flash_decode_sm90.py tests/kernels/test_gpu_graphs.py \
  tests/kernels/test_flash_fwd_sm90.py -k "decode or packed or tree or persistent or counter or nan"
echo "tests: $(tail -1 $OUT/gpu_tests_prefetch.log)"; grep -E "^FAILED|^E " $OUT/gpu_tests_prefetch.log | head -5
mkdir -p $OUT/inf && timeout 180 python benchmarks/bench_inference.py --out $OUT/inf > $OUT/bench_inference.log 2>&1
tail -12 $OUT/bench_inference.log
