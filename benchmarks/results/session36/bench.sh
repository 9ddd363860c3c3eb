# Session 36, right after first.sh (carry [".fa4-lib-b", ".fa4-py", ".ab"]; the machine must still be warm,
# holding FA4's half a in /tmp/fa4): half b joins FA4's library, then bench_attention at 8k / 32k, head dim
# 128, every column, and bars.py (session 32's call1.sh c). PKG=maskattn_loops (or another .ab package)
# benchmarks that package's kernels instead of the working tree's.
set -e
bash benchmarks/fa4_parts.sh stage
if [ -n "${PKG:-}" ]; then rm -rf maskattn && cp -r .ab/$PKG maskattn; echo "benchmarking .ab/$PKG"; fi
bash benchmarks/results/session32/call1.sh c
