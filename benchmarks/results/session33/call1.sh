# session 33, call 1 (a, b, c back to back: the GPU machine keeps /tmp only while warm).
# .ab (carried in a; `session33/make_ab.sh` builds it): copies of the package under names of their own
#   (session32/ab_pkgs.py's docstring): maskattn_main = main, maskattn_w5 = branch s31-wide5,
#   maskattn_tsum = branch s32-tree-reduce, maskattn_words = branch s32-fwd-words, maskattn_bits =
#   branch s33-bits (words + w5 + sm90_common.where_words).
#   a) carry [".fa4-lib-a", ".ab"] (or [".ab"]): GPU tests of bits (its own tests: Hopper forward,
#      decode, non-finite masking, sm90_common; the Hopper backwards at 64 / 128 and wide) in two
#      processes; the forward A/B main / tsum / words / bits; the backward A/B main / w5 / bits.
#      CAP_T / CAP_F / CAP_B (seconds), FWD_PKGS, FWD_CASES / BWD_CASES shrink it.
#   b) carry [".fa4-lib-b"]: half b (joins the library in /tmp/fa4)
#   c) carry [".fa4-py"]: bench_attention at 8k / 32k, head dim 128, every column, then bars.py
export PYTHONUNBUFFERED=1
AB=benchmarks/results/session32/ab_pkgs.py
source benchmarks/results/package_tests.sh  # tests_with
CAP_T=${CAP_T:-220}
case "$1" in
  a) [ -d .fa4-lib-a ] && bash benchmarks/fa4_parts.sh stage
     nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
     tests_with maskattn_bits gpu_tests_bits_fwd.log tests/kernels/test_sm90_common.py \
       tests/kernels/test_flash_fwd_sm90.py tests/kernels/test_flash_decode_sm90.py \
       tests/kernels/test_masked_nonfinite.py &
     tests_with maskattn_bits gpu_tests_bits_bwd.log tests/kernels/test_flash_bwd_sm90.py \
       tests/kernels/test_flash_bwd_sm90_wide.py &
     wait
     for f in $OUT/gpu_tests_*.log; do echo $f; grep -E "passed|failed|FAILED|Error" $f | tail -6; done
     PKGS="${FWD_PKGS:-maskattn_main maskattn_tsum maskattn_words maskattn_bits}" PASS=fwd AB_ROUNDS=3 \
       CASES="${FWD_CASES:-causal:32768:128 sliding:32768:128 documents:32768:128 sliding:8192:128 tree:8192:128}" \
       PYTHONPATH=. timeout ${CAP_F:-90} python $AB 2>&1 | grep -v Warn | tee $OUT/ab_fwd.log
     PKGS="maskattn_main maskattn_w5 maskattn_bits" PASS=bwd AB_ROUNDS=3 \
       CASES="${BWD_CASES:-sliding:32768:128 documents:32768:128 causal:32768:256 sliding:32768:256 causal:8192:192}" \
       PYTHONPATH=. timeout ${CAP_B:-120} python $AB 2>&1 | grep -v Warn | tee $OUT/ab_bwd.log ;;
  b|c) bash benchmarks/results/session32/call1.sh "$1" ;;  # FA4 half b; the benchmark and bars.py
esac
