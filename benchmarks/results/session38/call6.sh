# Session 38, call 6 (if a machine starts with the last ~240 s): ncu source counters of the one-pass
# backward on sliding 32k, to split a key tile's time into its block loops and its per-tile code as
# call 1 did for the forward (`session38/logs/ncu_fwd_sliding*`).
export PYTHONPATH=.
source benchmarks/results/ncu_source.sh
ncu_source ncu_bwd_sliding _attn_bwd_sm90 1 bwd:sliding:32768
