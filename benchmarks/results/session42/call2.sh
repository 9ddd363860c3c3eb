#!/usr/bin/env bash
# Session 42's second call (run by the next session after call1.sh, same branch): the other decode,
# plug-in and paged GPU tests, paged decode main vs branch, the inference table (with the no-mask
# column), ncu DRAM counters of decode q=1 against SDPA's kernel (carry .ab as for call1.sh).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
source benchmarks/results/package_tests.sh
CAP_T=230 tests_here gpu_tests_2.log tests/kernels/test_gpu.py tests/integrations/test_transformers.py tests/test_paged.py \
  -k "decode or split or tree or graph or generate or paged or unmasked"
tail -n 4 $OUT/gpu_tests_2.log
timeout 60 python benchmarks/results/session42/paged_ab.py > $OUT/paged_ab.log 2>&1; cat $OUT/paged_ab.log
mkdir -p $OUT/inf && timeout 150 python benchmarks/bench_inference.py --rounds 3 --out $OUT/inf > $OUT/bench_inference.log 2>&1
tail -8 $OUT/bench_inference.log
timeout 120 ncu --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,lts__t_sector_hit_rate.pct \
  -k regex:"_decode_split|flash_fprop|sdpa" python benchmarks/results/session41/decode_pair.py > $OUT/ncu_decode.log 2>&1
grep -E "decode_split|flash_fprop|sdpa|duration|bytes_read|throughput|hit_rate" $OUT/ncu_decode.log | head -30
