# Session 40, call 1 (no carry): the decode q=1 probe and the backward's parts at causal 8k,
# sliding / documents 32k (session 30's profiler script).
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $OUT/gpu.txt
PYTHONPATH=. timeout 200 python benchmarks/results/session40/decode_probe.py > $OUT/decode_probe.log 2>&1
CASES="causal:8192:128 sliding:32768:128 documents:32768:128 causal:32768:128" PYTHONPATH=. timeout 150 \
  python benchmarks/results/session30/profile_bwd_parts.py > $OUT/bwd_parts.log 2>&1
tail -n 30 $OUT/decode_probe.log $OUT/bwd_parts.log
