# Session 40, call 2 (no carry): decode configs with double-buffered K / V, then the idle-GPU probe
# of the backward / forward+backward at causal and sliding 8k.
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $OUT/gpu.txt
PYTHONPATH=. timeout 240 python benchmarks/results/session40/decode_configs.py > $OUT/decode_configs.log 2>&1
PYTHONPATH=. timeout 150 python benchmarks/results/session40/gap_probe.py > $OUT/gap_probe.log 2>&1
grep -v resources $OUT/decode_configs.log | head -70; grep resources $OUT/decode_configs.log | awk -F'resources' '!seen[$2]++' | head; cat $OUT/gap_probe.log
