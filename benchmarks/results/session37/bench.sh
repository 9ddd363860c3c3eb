# Session 37, right after call1.sh (carry [".fa4-lib-b", ".fa4-py", ".ab"]; the machine must still be warm,
# holding FA4's half a in /tmp/fa4): half b joins FA4's library, then bench_attention at 8k / 32k, head
# dim 128, every column, and bars.py. The working tree's maskattn if call1.sh's GPU tests all passed
# (/tmp/s37_cut_ok), else main's (.ab/maskattn_main).
set -e
bash benchmarks/fa4_parts.sh stage
if [ ! -f /tmp/s37_cut_ok ]; then rm -rf maskattn && cp -r .ab/maskattn_main maskattn; echo "benchmarking main"; fi
bash benchmarks/results/session32/call1.sh c
