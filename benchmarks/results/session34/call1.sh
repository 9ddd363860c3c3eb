# session 34: two calls back to back (the GPU machine keeps /tmp only while warm).
#   a) carry [".ab", ".fa4-lib-a"]: FA4 library half a staged, then session 33's call2.sh (GPU tests
#      of branch s33-nt, forward A/B main / bits / nt, backward A/B main / nt).
#   b) carry [".fa4-lib-b", ".fa4-py"] (45 MB with the checkout, under the 64 MiB): half b joins
#      the library, then session 32's call1.sh c (bench_attention 8k / 32k, every column; bars.py).
export PYTHONUNBUFFERED=1
case "$1" in
  a) bash benchmarks/fa4_parts.sh stage
     CAP_T=${CAP_T:-240} bash benchmarks/results/session33/call2.sh ;;
  b) bash benchmarks/fa4_parts.sh stage && bash benchmarks/results/session32/call1.sh c ;;
esac
