# session 35, call 1 (carry [".ab"] from session35/make_ab.sh): what main alone can answer.
#  1. session 34's tree_rows.py on main: tree verification at equal K / V bytes, 256 packed rows a
#     KV head (two 128-row items) against 128 (one item).
#  2. the causal 32k backward A/B of session 31's K change with main FIRST (session 31 ran the base
#     first and saw 0.985x at D128, 0.940x at D256).
#  3. session 34's call2.sh: ncu of tree verification's packed kernel.
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python -c "import torch, triton; print(torch.__version__, triton.__version__)"
PYTHONPATH=. timeout 70 python benchmarks/results/session34/tree_rows.py 2>&1 | grep -v Warn | tee $OUT/tree_rows.log
PKGS="maskattn_main maskattn_base" PASS=bwd AB_ROUNDS=3 CASES="causal:32768:128 causal:32768:256" \
  PYTHONPATH=. timeout 150 python benchmarks/results/session32/ab_pkgs.py 2>&1 | grep -v Warn | tee $OUT/ab_kclean_reversed.log
bash benchmarks/results/session34/call2.sh
