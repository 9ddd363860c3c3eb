# For session 42's first call, on branch s41-real-rows-fast (carry .ab, with .ab/maskattn_main from
# main: rm -rf .ab/maskattn_main && git archive main maskattn | tar -x -C .ab && mv .ab/maskattn
# .ab/maskattn_main): the faster real_rows kernel's GPU tests, its kernel time against main's, the
# decode A/B, the inference table; then ncu DRAM counters of decode q=1 against SDPA's cuDNN kernel.
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $OUT/gpu.txt
source benchmarks/results/package_tests.sh
CAP_T=150 tests_here gpu_tests_real_rows.log tests/kernels/test_real_rows.py tests/kernels/test_flash_decode_sm90.py \
  tests/kernels/test_gpu_graphs.py -k "real_row or decode or tree or graph"
tail -n 3 $OUT/gpu_tests_real_rows.log
PYTHONPATH=. timeout 60 python benchmarks/results/session41/rr_prep_ab.py > $OUT/rr_prep_ab.log 2>&1; cat $OUT/rr_prep_ab.log
AB_CASES="0 2 3" PKGS="maskattn_main maskattn" PYTHONPATH=. timeout 60 python benchmarks/results/session40/ab_decode.py \
  > $OUT/ab_decode.log 2>&1; cat $OUT/ab_decode.log
mkdir -p $OUT/inf && PYTHONPATH=. timeout 110 python benchmarks/bench_inference.py --out $OUT/inf > $OUT/bench_inference.log 2>&1
tail -6 $OUT/bench_inference.log
PYTHONPATH=. timeout 120 ncu --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,lts__t_sector_hit_rate.pct \
  -k regex:"_decode_split|flash_fprop|sdpa" python benchmarks/results/session41/decode_pair.py > $OUT/ncu_decode.log 2>&1
grep -E "decode_split|flash_fprop|sdpa|duration|bytes_read|throughput|hit_rate" $OUT/ncu_decode.log | head -30
