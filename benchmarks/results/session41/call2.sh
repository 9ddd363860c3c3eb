# Session 41, call 2: the decode GPU tests on the code to land (real_rows.py; the read-ahead
# reverted), then causal 8k forward+backward against SDPA with the SM clock sampled.
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $OUT/gpu.txt
source benchmarks/results/package_tests.sh
CAP_T=200 tests_here gpu_tests_decode.log tests/kernels/test_real_rows.py tests/kernels/test_gpu.py \
  tests/kernels/test_flash_decode_sm90.py tests/kernels/test_gpu_graphs.py -k "real_row or decode or tree or Decode or split or graph"
tail -n 3 $OUT/gpu_tests_decode.log
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw --format=csv -lms 50 > $OUT/smi.csv &
SMI=$!
PYTHONPATH=. timeout 100 python benchmarks/results/session41/fb_clock_probe.py > $OUT/fb_clock_probe.log 2>&1
kill $SMI; cat $OUT/fb_clock_probe.log
python - <<'PY'
import csv, os, statistics
rows = list(csv.reader(open(os.environ["OUT"] + "/smi.csv")))[1:]
clk = [int(r[1].split()[0]) for r in rows if len(r) > 2 and r[1].strip()[0].isdigit()]
pw = [float(r[2].split()[0]) for r in rows if len(r) > 2 and r[2].strip()[0].isdigit()]
print(f"smi samples {len(clk)}: SM clock median {statistics.median(clk)} MHz, min {min(clk)}, max {max(clk)}; "
      f"power median {statistics.median(pw):.0f} W, max {max(pw):.0f}")
PY
