"""Session 40: decode configs with K / V double-buffered (B=8, Hq=32, Hkv=8, D=128, bf16, 32k keys).

The sm_90a compile (CPU, Triton 3.6) shows the portable split-KV kernel's K / V tensor-descriptor
loads single-buffered at today's (16, 128, 4 warps, 2 stages): the next block's loads are issued
after both products of the current one, so a program streams only while it is not computing
(the key index load takes one pipeline stage). Double buffers appear from 5 stages on
(BLOCK_N 64: 2 x 32 KB, 72 KB of shared memory, 255 registers: 2 programs per SM; BLOCK_N 128:
140 KB, 1 program per SM). Session 40's probe: maskattn streams at 3.19 TB/s, cuDNN's SDPA at
3.23, same fixed cost.

Prediction: (16, 64, 4, 5) streams at >= 3.23 TB/s: decode q=1 0.360 -> ~0.355 ms (>= SDPA).

Every config x split count, decode q=1 and q=4, interleaved rounds with SDPA (q=1) in the same
process; outputs checked against the default config's. ``CONFIGS``, ``SPLITS``, ``ROUNDS``: env.
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.getcwd())
import maskattn as ma  # noqa: E402
from maskattn.kernels import config, decode  # noqa: E402
from benchmarks.gpu_setup import flex_and_timer  # noqa: E402

_, _, bench = flex_and_timer("decode_configs.py")
sdpa = torch.nn.functional.scaled_dot_product_attention
B, HQ, HKV, D, LK = 8, 32, 8, 128, 32768
CONFIGS = [tuple(int(x) for x in c.split(",")) for c in os.environ.get(
    "CONFIGS", "16,128,4,2 16,64,4,5 16,128,4,5 16,64,8,5 16,64,4,3 16,128,8,2").split()]  # BLOCK_M,BLOCK_N,warps,stages
SPLITS = [int(s) for s in os.environ.get("SPLITS", "2 3 4 6 8").split()]
ROUNDS = int(os.environ.get("ROUNDS", "3"))
CHOSEN = decode.num_splits


def set_config(cfg: dict | None, splits: int | None) -> None:
    """Decode launch config and split count for the next calls (None: the library's own)."""
    config.OVERRIDES.pop("decode", None)
    if cfg is not None:
        config.OVERRIDES["decode"] = cfg
    decode.num_splits = CHOSEN if splits is None else (lambda *a: splits)


def under(cfg, splits, fn):
    """``fn`` run with ``cfg`` / ``splits`` set at each call: the rounds interleave the variants."""
    return lambda: (set_config(cfg, splits), fn())[1]


print(torch.cuda.get_device_name(), torch.__version__, flush=True)
g = torch.Generator(device="cuda").manual_seed(0)
k, v = (torch.randn(B, HKV, LK, D, device="cuda", dtype=torch.bfloat16, generator=g) for _ in range(2))
for lq in (1, 4):
    q = torch.randn(B, HQ, lq, D, device="cuda", dtype=torch.bfloat16, generator=g)

    def fresh_map():  # a map replays the first decode launch it recorded: one map per variant
        return ma.compile_mask(ma.causal().to("cuda"), lq, LK, device="cuda")

    set_config(None, None)
    ref = ma.attention(q, k, v, fresh_map())
    calls = {}
    if lq == 1:
        calls["sdpa"] = under(None, None, lambda: sdpa(q, k, v, enable_gqa=True))
    calls["default"] = under(None, None, (lambda bm: lambda: ma.attention(q, k, v, bm))(fresh_map()))
    for m, n, w, st in CONFIGS:
        for s in SPLITS:
            name, cfg = f"({m},{n},{w},{st}) s={s}", dict(BLOCK_M=m, BLOCK_N=n, num_warps=w, num_stages=st)
            set_config(cfg, s)
            bm = fresh_map()
            try:
                err = float((ma.attention(q, k, v, bm) - ref).abs().max())
            except Exception as e:  # noqa: BLE001 - an unlaunchable config is reported
                print(f"q={lq} {name}: {type(e).__name__} {str(e)[:80]}", flush=True)
                continue
            assert err < 2e-2, err
            calls[name] = under(cfg, s, (lambda bm: lambda: ma.attention(q, k, v, bm))(bm))
            print(f"q={lq} {name}: resources {config.RESOURCES.get('_decode_split')}", flush=True)
    times = {name: [] for name in calls}
    for _ in range(ROUNDS):
        for name, fn in calls.items():
            times[name].append(bench(fn))
    set_config(None, None)
    base = np.median(times["sdpa" if lq == 1 else "default"])
    for name, ts in sorted(times.items(), key=lambda kv: np.median(kv[1])):
        print(f"q={lq} {name:22s} {np.median(ts):.4f} ms  x{base / np.median(ts):.3f}  {[round(t, 4) for t in ts]}",
              flush=True)
