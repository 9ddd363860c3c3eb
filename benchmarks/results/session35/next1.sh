# For the next session's first call (carry [".fa4-lib-a"], ~250 s): FA4 library half a staged, then
# session 34's call2.sh (ncu of tree verification's packed kernel: DRAM bytes, memory tables, warp
# states, source counters). Right after it, while the machine is warm: session35/bench.sh with carry
# [".fa4-lib-b", ".fa4-py"] (half b + bench_attention 8k / 32k with every column + bars.py).
bash benchmarks/fa4_parts.sh stage
bash benchmarks/results/session34/call2.sh
