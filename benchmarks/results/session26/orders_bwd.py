"""Session 26 (for a later device call): does the backward's locality order lose, as the forward's
did, by running neighbouring key tiles of one head on all programs at once? Same kernel, same
inputs, only the work lists differ (host-made and put into each map's list cache before its first
backward), timed interleaved in one process:
  head   - main's order (batch, KV head, key tile): 132 neighbouring key tiles of one head at once,
           which add into the same dQ rows and read the same Q / dO rows
  inter  - (batch, key tile, KV head): every head's key tile kt before any head's kt + 1, as the
           forward's lists since session 26 (query tiles there)
  lpt    - cost only (session 23's lists)
Prediction (``l2_traffic_model.py --kernel bwd`` with this order patched in): the head order's lists are
not taken on tree (busiest program past the slack: LPT's lists run, 5.24 GB from DRAM at 32k, 0.83 GB
at 8k); the interleaved order is within the slack there and moves 1.43 / 0.27 GB: tree 32k 1.15-1.4x,
tree 8k 1.1-1.2x. Documents 32k 1.40 -> 1.48 GB, 8k 0.28 -> 0.25 GB: 0.97-1.05x (more if the head
order's many programs on one head's rows cost what they cost the forward). Sliding: same traffic,
1.00-1.03x.
B=1, D=128, bf16; do_bench medians of the backward alone on a retained graph (its host-side work
included), as session 24's ``ab_bwd.py``. Usage: python benchmarks/results/session26/orders_bwd.py"""
import os, statistics, sys
import numpy as np
import torch
import triton
sys.path.insert(0, os.getcwd())
import maskattn as ma
from benchmarks import families
from maskattn.kernels import flash_bwd_sm90 as fb, plans, work_lists as wl
from maskattn.kernels.config import sm_count
from maskattn.kernels.forward import map_strides


def interleaved_positions(bm, kv_heads, group, sb, sh):
    """(batch 1) each item's place in the order (key tile, KV head), numbered as ``fb.item_costs``."""
    tiles = fb._ranked_key_tiles(bm, fb._map_rows(1, kv_heads, group, sb, sh), group)  # [1, kvh, rank]
    pos = tiles * kv_heads + np.arange(kv_heads).reshape(1, kv_heads, 1)
    return pos.reshape(kv_heads, bm.n_k_tiles).T.reshape(-1)


ROUNDS = int(os.environ.get("AB_ROUNDS", 5))
CASES = [c.split(":") for c in os.environ.get(
    "CASES", "sliding:32768:16:16 documents:32768:16:16 sliding:8192:16:16 documents:8192:16:16 "
             "tree:32768:16:16 tree:8192:16:16 documents:8192:32:8 sliding:32768:32:8").split()]
bench = lambda fn: float(triton.testing.do_bench(fn, warmup=25, rep=150, return_mode="median"))  # noqa: E731
print("GPU", torch.cuda.get_device_name(), torch.__version__, triton.__version__, flush=True)
for fam, L, hq, hkv in CASES:
    L, hq, hkv = int(L), int(hq), int(hkv)
    group = hq // hkv
    mask = families.mask(fam, L)
    g = torch.Generator(device="cuda").manual_seed(0)
    q = torch.randn(1, hq, L, 128, device="cuda", generator=g, dtype=torch.bfloat16).requires_grad_()
    k, v = (torch.randn(1, hkv, L, 128, device="cuda", generator=g, dtype=torch.bfloat16).requires_grad_()
            for _ in range(2))
    do = torch.randn(1, hq, L, 128, device="cuda", generator=g, dtype=torch.bfloat16)
    outs, grads = {}, {}
    for name in ("head", "inter", "lpt"):
        bm = ma.compile_mask(mask, L, L, device="cuda")
        sb, sh = map_strides(bm)
        n_items = hkv * bm.n_k_tiles
        if not fb.short_columns(bm, group):
            print(f"{fam} {L}: one program per key tile (no lists to order)", flush=True)
            break
        n_programs = min(n_items, sm_count(q.device))
        costs = fb.item_costs(bm, 1, hkv, group, sb, sh)
        positions = {"head": fb.item_positions(bm, 1, hkv, group, sb, sh),
                     "inter": interleaved_positions(bm, hkv, group, sb, sh), "lpt": None}[name]
        plans.remember(bm, fb._LISTS, (1, hkv, group, n_programs),
                       wl.balanced_lists(costs, n_programs, q.device, positions))
        outs[name] = ma.attention(q, k, v, bm)
        grads[name] = torch.autograd.grad(outs[name], (q, k, v), do, retain_graph=True)
    if len(outs) < 3:
        continue
    times = {name: [] for name in outs}
    for _ in range(ROUNDS):
        for name, out in outs.items():
            times[name].append(bench(lambda: torch.autograd.grad(out, (q, k, v), do, retain_graph=True)))
    med = {name: statistics.median(t) for name, t in times.items()}
    line = f"{fam:9s} {L:6d} {hq}:{hkv} | head {med['head']:.4f} ms"
    for name in ("inter", "lpt"):
        same = all(torch.equal(a, b) for a, b in zip(grads[name][1:], grads["head"][1:]))
        dq = float((grads[name][0].float() - grads["head"][0].float()).abs().max())
        line += f" | {name} {med['head'] / med[name]:.3f}x dK/dV {'=' if same else 'DIFFER'} dQ {dq:.1e}"
    print(line, flush=True)
