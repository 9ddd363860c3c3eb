# session 35, right after call_nt.sh (carry [".fa4-lib-b", ".fa4-py", ".ab"]; the machine must still be
# warm, holding half a in /tmp/fa4): half b joins FA4's library, then bench_attention at 8k / 32k,
# head dim 128, every column, and bars.py (session 32's call1.sh c). PKG=main benchmarks main's
# kernels (.ab/maskattn_main) instead of the working tree's, for when call_nt.sh's tests failed.
set -e
bash benchmarks/fa4_parts.sh stage
if [ "${PKG:-tree}" = main ]; then rm -rf maskattn && cp -r .ab/maskattn_main maskattn; fi
bash benchmarks/results/session32/call1.sh c
