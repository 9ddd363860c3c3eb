# session 34: two calls back to back (the GPU machine keeps /tmp only while warm).
#   a) carry [".ab", ".fa4-lib-a"]: FA4 library half a staged, then session 33's call2.sh (GPU tests
#      of branch s33-nt, forward A/B main / bits / nt, backward A/B main / nt).
#   t) carry [".ab"] (`session34/make_ab.sh`; the first call to make): the GPU tests of s33-nt as in
#      a, and those of s34-wide-packed that its change reaches (split-KV decode, relaunch, graphs),
#      the forward and backward A/B main / nt (session 33 measured bits), then tree_rows.py nt /
#      wide.
#   b) carry [".fa4-lib-b", ".fa4-py"] (45 MB with the checkout, under the 64 MiB): half b joins
#      the library, then session 32's call1.sh c (bench_attention 8k / 32k, every column; bars.py).
export PYTHONUNBUFFERED=1
case "$1" in
  a) bash benchmarks/fa4_parts.sh stage
     CAP_T=${CAP_T:-240} bash benchmarks/results/session33/call2.sh ;;
  t) source benchmarks/results/package_tests.sh  # tests_with
     AB=benchmarks/results/session32/ab_pkgs.py
     export CAP_T=${CAP_T:-230}
     nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
     tests_with maskattn_nt gpu_tests_nt_fwd.log tests/kernels/test_sm90_common.py \
       tests/kernels/test_masked_nonfinite.py tests/kernels/test_flash_decode_sm90.py \
       tests/kernels/test_flash_fwd_sm90.py -k "not random" &
     tests_with maskattn_nt gpu_tests_nt_bwd.log tests/kernels/test_flash_bwd_sm90.py \
       tests/kernels/test_flash_bwd_sm90_wide.py &
     tests_with maskattn_nt gpu_tests_nt_fwd_random.log tests/kernels/test_flash_fwd_sm90.py -k random &
     tests_with maskattn_wide gpu_tests_wide.log tests/kernels/test_flash_decode_sm90.py \
       tests/kernels/test_relaunch.py tests/kernels/test_gpu_graphs.py &
     wait
     for f in $OUT/gpu_tests_*.log; do echo $f; tail -3 $f; done
     PKGS="maskattn_main maskattn_nt" PASS=fwd AB_ROUNDS=3 \
       CASES="causal:32768:128 causal:8192:128 sliding:32768:128 documents:32768:128 tree:8192:128" \
       PYTHONPATH=. timeout 50 python $AB 2>&1 | grep -v Warn | tee $OUT/ab_fwd_nt.log
     PKGS="maskattn_main maskattn_nt" PASS=bwd AB_ROUNDS=3 CASES="sliding:32768:128 documents:32768:128" \
       PYTHONPATH=. timeout 35 python $AB 2>&1 | grep -v Warn | tee $OUT/ab_bwd_nt.log
     PKGS="maskattn_nt maskattn_wide" PYTHONPATH=. timeout 60 python benchmarks/results/session34/tree_rows.py 2>&1 \
       | grep -v Warn | tee $OUT/tree_rows.log ;;
  b) bash benchmarks/fa4_parts.sh stage && bash benchmarks/results/session32/call1.sh c ;;
esac
