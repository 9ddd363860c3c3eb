"""For a later device call: the Hopper forward's per-head-dim configuration (``HEAD_CONFIGS``:
shared-memory width, key block, ring stages) swept at head dims 64 and 256, in one process.
Session 29 chose (64, 128, 3) and (256, 64, 2) without a sweep.

Candidates: head dim 64 with 4 stages (144 KB) or 64-key blocks and 4 stages; head dim 256 with
32-key blocks and 3 stages (160 KB). Prediction (written before any run): at 64 a deeper ring
1.00-1.05x on sliding / documents (short rows start each item with an empty ring), causal
unchanged; at 256, 32-key blocks 0.9-1.0x (twice the barriers and softmax steps per key).

Each configuration runs on a freshly compiled map (a launch plan is recorded on the map it first
ran with). B=1, H=16, bf16, forward only; CUDA-event medians over interleaved rounds.
Usage: python benchmarks/results/session29/sweep_head_configs.py
"""
import os
import sys

import torch
import triton

sys.path.insert(0, os.getcwd())
import maskattn as ma  # noqa: E402
from benchmarks import families  # noqa: E402
from benchmarks.ab import interleaved_medians  # noqa: E402
from maskattn.kernels import flash_fwd_sm90  # noqa: E402

print("GPU", torch.cuda.get_device_name(), torch.__version__, triton.__version__, flush=True)
BASE = flash_fwd_sm90.HEAD_CONFIGS
CANDIDATES = {64: [(64, 128, 3), (64, 128, 4), (64, 64, 4)], 256: [(256, 64, 2), (256, 32, 3)]}
CASES = [c.split(":") for c in os.environ.get(
    "CASES", "causal:32768:64 sliding:32768:64 documents:32768:64 causal:8192:64 "
             "causal:32768:256 sliding:32768:256 documents:32768:256").split()]

for fam, L, d in CASES:
    L, d = int(L), int(d)
    g = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (torch.randn(1, 16, L, d, device="cuda", generator=g, dtype=torch.bfloat16) for _ in range(3))
    fns, outs = {}, {}
    for config in CANDIDATES[d]:
        configs = tuple(config if c[0] == config[0] else c for c in BASE)
        bm = ma.compile_mask(families.mask(fam, L), L, L, device="cuda")  # its own launch plan

        def run(configs=configs, bm=bm):
            flash_fwd_sm90.HEAD_CONFIGS = configs
            return ma.attention(q, k, v, bm)
        outs[config] = run()
        fns[config] = run
    torch.cuda.synchronize()
    med = interleaved_medians(fns, int(os.environ.get("AB_ROUNDS", 5)), 5 if L >= 32768 else 20)
    first = CANDIDATES[d][0]
    for config, t in med.items():
        diff = float((outs[config].float() - outs[first].float()).abs().max())
        print(f"{fam:10s} {L:6d} D{d:<3d} {str(config):15s} {t / 1e3:.3f} ms ({med[first] / t:.3f}x of "
              f"{first}) | max |diff| {diff:.1e}", flush=True)
flash_fwd_sm90.HEAD_CONFIGS = BASE
