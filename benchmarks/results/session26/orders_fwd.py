"""Session 26: why the forward's locality lists (branch s25-fwd-lists) lose 5-15% on sliding, tree and
8k documents while winning 10-25% on documents 32k / 128k (session 26, call 1). Same kernel, same
inputs, only the work lists differ (host-made), interleaved in one process:
  *_nopf   - the branch's kernel as measured in call 1 (list entries read when an item starts), the
             others read each entry one item ahead (``sm90_schedule.peek_item``)
  snake    - the snake as lists (``work_lists.snake_lists``): 9309b75's in-kernel assignment plus the
             list read: old / snake isolates the cost of reading items from a list
  old      - 9309b75's forward itself (``.ab/fwd_head.py``, carry [".ab"]); ratios are old / variant
  localI   - locality lists with I KV heads interleaved: order (b, KV head // I, query tile,
             KV head % I, query head of the group, slice); I=1 is the branch's order
B=1, D=128, bf16; CUDA-event medians. Usage: python benchmarks/results/session26/orders_fwd.py"""
import os, sys, statistics
import numpy as np
import torch
sys.path.insert(0, os.getcwd())
import maskattn as ma
from benchmarks import families
from benchmarks.ab import event_times_us as timed
from maskattn.kernels import flash_fwd_sm90 as f, work_lists as wl
from maskattn.kernels.forward import map_strides
from maskattn.kernels.tma import ensure_allocator
from maskattn.kernels.config import sm_count
from benchmarks.ab import load_kernel_variant

# 9309b75's forward (in-kernel snake) and its schedule module, as in session 25's A/B
load_kernel_variant(".ab/sched_head.py", "sched_head")
old = load_kernel_variant(".ab/fwd_head.py", "variant0_flash_fwd_sm90")
# the branch's forward before the list entries were read ahead (``sm90_schedule.peek_item``)
load_kernel_variant(".ab/sched_lists.py", "sched_lists")
nopf = load_kernel_variant(".ab/fwd_lists.py", "variant1_flash_fwd_sm90")

print("GPU", torch.cuda.get_device_name(), torch.__version__, flush=True)
ensure_allocator()


def positions(bm, heads, group, sb, sh, inter):
    _, (b, h, qt, part) = f._ranked_rows(bm, 1, heads, sb, sh)
    kvh, hg = h // group, h % group
    order = np.lexsort((part, hg, kvh % inter, qt, kvh // inter, b))
    pos = np.empty(order.size, dtype=np.int64)
    pos[order] = np.arange(order.size)
    return pos


cases = [c.split(":") for c in os.environ.get("CASES", "documents:32768 sliding:32768 tree:32768 documents:8192 "
         "sliding:8192 tree:8192 documents:32768:32:8 sliding:8192:32:8 documents:131072").split()]
for c in cases:
    fam, L = c[0], int(c[1])
    hq, hkv = (int(c[2]), int(c[3])) if len(c) == 4 else (16, 16)
    g = hq // hkv
    bm = ma.compile_mask(families.mask(fam, L), L, L, device="cuda")
    q = torch.randn(1, hq, L, 128, device="cuda", dtype=torch.bfloat16)
    k, v = (torch.randn(1, hkv, L, 128, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    sb, sh = map_strides(bm)
    # (call 1 asserted here that the map is statically scheduled, passing 1 for the heads per map
    # group instead of 16: wrong for tree 32k, whose one map serves all heads and which is static)
    n = hq * bm.n_q_tiles * (bm.block_q // 128)
    P = min(n, sm_count(q.device))
    costs = f.item_costs(bm, 1, hq, sb, sh)
    snake, local1 = wl.snake_lists(n, P, q.device), wl.balanced_lists(costs, P, q.device, positions(bm, hq, g, sb, sh, 1))
    lists = {"old": None, "snake_nopf": snake, "local1_nopf": local1, "snake": snake, "local1": local1}
    for inter in sorted({4, hkv}):
        lists[f"local{inter}_nopf"] = lists[f"local{inter}"] = wl.balanced_lists(
            costs, P, q.device, positions(bm, hq, g, sb, sh, inter))
    outs, fns = {}, {}
    for name, li in lists.items():
        o, l = torch.empty_like(q), torch.empty(1, hq, L, device="cuda")
        outs[name] = o
        if li is None:
            fns[name] = (lambda o=o, l=l: old.sm90_forward(q, k, v, o, l, bm, 128 ** -0.5, 128, 128, sb, sh))
            continue
        mod = nopf if name.endswith("_nopf") else f
        fns[name] = (lambda o=o, l=l, li=li, mod=mod: mod.launch_sm90((P,), q, k, v, o, l, (l, l, l), bm, 128 ** -0.5, 128, 128,
                                                           sb, sh, bm.n_q_tiles, n, 1, packed=False, passes=2,
                                                           thread_release=True, lists=li))
    for fn in fns.values():
        for _ in range(3):
            fn()
    reps = 4 if L >= 131072 else 20 if L >= 32768 else 60
    t = {nm: [] for nm in fns}
    for _ in range(5):
        for nm, fn in fns.items():
            t[nm] += timed(fn, reps)
    med = {nm: statistics.median(x) for nm, x in t.items()}
    line = f"{fam:10s} {L:6d} {hq}:{hkv}: old {med['old']:8.1f} us"
    for nm in lists:
        if nm != "old":
            same = torch.equal(outs[nm], outs["old"])
            line += f" | {nm} {med['old'] / med[nm]:.3f}x{'' if same else '(!)'}"
    print(line, flush=True)
