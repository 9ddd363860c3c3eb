# session 32, call 1: three calls back to back (the GPU machine keeps /tmp only while warm).
# .ab (carried in a; `session32/make_ab.sh` builds it): copies of the package under names of their own
#   (ab_pkgs.py's docstring): maskattn_base = 9657aab (before session 31's K change), maskattn_main =
#   main, maskattn_w5 = branch s31-wide5 (merged with main), maskattn_tmax = 5f5a1cf (the forward's
#   row max as a tree), maskattn_tsum = branch s32-tree-reduce (that plus the row sum as a tree),
#   maskattn_words = branch s32-fwd-words (that plus partial blocks' bitmap words loaded early).
#   a) carry [".fa4-lib-a", ".ab"] (or [".ab"] alone: no FA4 chain): FA4 library half a; GPU tests
#      of w5 (wide backward, and head dims 64 / 128, whose _block_grads it touched) and of words
#      (Hopper forward, decode; it holds tmax and tsum), main's tests (words: its own) against each
#      package in a folder of its own; the forward A/B main / tmax / tsum / words; the wide5
#      backward A/B against main; with WITH_K=1, the causal 32k backward A/B of the K change in
#      reversed order. CAP_T / CAP_F / CAP_W (seconds) and FWD_CASES / W5_CASES shrink it.
#   b) carry [".fa4-lib-b"]: half b (joins the library in /tmp/fa4)
#   c) carry [".fa4-py"]: bench_attention at 8k / 32k, head dim 128, every column (`--long` and
#      `--other-head-dims` given no values: no 128k, no other head dims), then bars.py
export PYTHONUNBUFFERED=1
AB=benchmarks/results/session32/ab_pkgs.py
source benchmarks/results/package_tests.sh  # tests_with
case "$1" in
  a) [ -d .fa4-lib-a ] && bash benchmarks/fa4_parts.sh stage
     nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
     tests_with maskattn_w5 gpu_tests_bwd_wide5.log tests/kernels/test_flash_bwd_sm90_wide.py &
     tests_with maskattn_w5 gpu_tests_bwd_w5_d128.log tests/kernels/test_flash_bwd_sm90.py &
     tests_with maskattn_words gpu_tests_fwd_words.log tests/kernels/test_sm90_common.py \
       tests/kernels/test_flash_fwd_sm90.py tests/kernels/test_flash_decode_sm90.py \
       tests/kernels/test_masked_nonfinite.py &
     wait
     for f in $OUT/gpu_tests_*.log; do echo $f; grep -E "passed|failed|FAILED|Error" $f | tail -6; done
     PKGS="maskattn_main maskattn_tmax maskattn_tsum maskattn_words" PASS=fwd AB_ROUNDS=3 \
       CASES="${FWD_CASES:-causal:32768:128 sliding:32768:128 documents:32768:128 sliding:8192:128 tree:8192:128}" \
       PYTHONPATH=. timeout ${CAP_F:-75} python $AB 2>&1 | grep -v Warn | tee $OUT/ab_fwd_tree_reduce.log
     PKGS="maskattn_main maskattn_w5" PASS=bwd AB_ROUNDS=3 \
       CASES="${W5_CASES:-causal:32768:256 sliding:32768:256 documents:32768:256 causal:8192:256 causal:8192:192}" \
       PYTHONPATH=. timeout ${CAP_W:-100} python $AB 2>&1 | grep -v Warn | tee $OUT/ab_wide5.log
     [ -n "$WITH_K" ] && PKGS="maskattn_main maskattn_base" PASS=bwd AB_ROUNDS=3 CASES="causal:32768:128" \
       PYTHONPATH=. timeout 50 python $AB 2>&1 | grep -v Warn | tee $OUT/ab_kclean_reversed.log ;;
  b) bash benchmarks/fa4_parts.sh stage ;;
  c) source .fa4-py/device.sh; export PYTHONPATH=$PWD:$PYTHONPATH
     nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
     timeout 500 python benchmarks/bench_attention.py --sizes 8192 32768 --long --other-head-dims --no-sweeps \
       --out $OUT/bench 2>&1 | grep -v Warn | tail -30
     python benchmarks/bars.py $OUT/bench/*.json 2>&1 | tail -40 ;;
esac
