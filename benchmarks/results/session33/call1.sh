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
tests_with() {  # tests_with PACKAGE LOG TEST_FILE...: the tests (.ab/PACKAGE_tests/tests if made, else
  # main's) against .ab/PACKAGE as maskattn
  local pkg=$1 log=$2; shift 2
  local dir=/tmp/tests_${pkg}_$log src=tests
  [ -d .ab/${pkg}_tests/tests ] && src=.ab/${pkg}_tests/tests
  rm -rf $dir && mkdir -p $dir && cp -r $src pyproject.toml $dir/ && cp -r .ab/$pkg $dir/maskattn
  (cd $dir && PYTHONPATH=. timeout ${CAP_T:-220} python -m pytest -q -x -m gpu -p no:cacheprovider "$@" \
     > $OUT/$log 2>&1)
}
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
  b) bash benchmarks/fa4_parts.sh stage ;;
  c) source .fa4-py/device.sh; export PYTHONPATH=$PWD:$PYTHONPATH
     nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
     timeout 500 python benchmarks/bench_attention.py --sizes 8192 32768 --long --other-head-dims --no-sweeps \
       --out $OUT/bench 2>&1 | grep -v Warn | tail -30
     python benchmarks/bars.py $OUT/bench/*.json 2>&1 | tail -40 ;;
esac
