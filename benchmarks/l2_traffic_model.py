"""Predict the DRAM traffic that the order of work items causes in the persistent Hopper kernels,
on the CPU, before a device run (METHOD's "predict").

A work item touches one operand tile per non-empty tile of its row or column. Forward: the K and V
rows of each key tile its query tile walks (64 KB at head dim 128 in bf16, read). Backward: the Q
and dO rows of each query tile its key tile walks (64 KB, read) and that query tile's rows of the
fp32 dQ accumulator (64 KB, added to: read and written back), so 128 KB of cache and 192 KB of
DRAM traffic per miss. The programs walk their work lists; each item takes the time of its
estimated cost (the kernels' own cost models) and touches its tiles evenly over that time. The
touches of all programs, merged in time order, go through an LRU cache of ``--l2-mb`` megabytes;
each miss is DRAM traffic. The schedules compared: the one before session 24/25 (forward: the
snake over heaviest-first items; backward: cost-only LPT lists) and the locality lists of
``work_lists.balanced_lists``.

A coarse model (no L2 partitions or set conflicts, the kernels' other traffic ignored), meant to
rank schedules. Calibration against session 24's H100 A/B of the backward: documents 32k 6.33 ->
1.40 GB predicted (4.9 GB less, ~1.6 ms at 3 TB/s; measured 4.01 -> 2.70 ms, 1.31 ms less; ncu had
counted ~8 GB moved before the change), documents 8k 0.75 -> 0.28 GB (~0.16 ms; measured 0.644 ->
0.518 ms), sliding unchanged (measured 1.07x, of which 1.04x came from the bitmaps).

    python benchmarks/l2_traffic_model.py --kernel fwd --families documents tree --lengths 8192 32768
"""
from __future__ import annotations

import argparse
import collections
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import maskattn as ma  # noqa: E402
from benchmarks import families  # noqa: E402
from maskattn.kernels import flash_bwd_sm90, flash_fwd_sm90, work_lists  # noqa: E402

TILE_BYTES = 2 * 128 * 128 * 2  # two operands (K and V, or Q and dO) of a 128-row tile, D=128, bf16
# per tile touched: (bytes it holds in the cache, bytes a miss moves to and from DRAM); the backward's
# dQ accumulator rows (fp32, as large as Q and dO together) are read and written back
FOOTPRINT = {"fwd": (TILE_BYTES, TILE_BYTES), "bwd": (2 * TILE_BYTES, 3 * TILE_BYTES)}


def _tiles_of(ptr_a, idx_a, ptr_b, idx_b, n: int) -> list[np.ndarray]:
    """Non-empty tiles (full, then partial) of each of the first ``n`` map rows or columns."""
    pa, ia, pb, ib = (x.cpu().numpy() for x in (ptr_a, idx_a, ptr_b, idx_b))
    return [np.concatenate([ia[pa[r]:pa[r + 1]], ib[pb[r]:pb[r + 1]]]) for r in range(n)]


def _lists(ptr, items) -> list[list[int]]:
    ptr, items = ptr.tolist(), items.tolist()
    return [items[ptr[p]:ptr[p + 1]] for p in range(len(ptr) - 1)]


def _snake(n_items: int, n_programs: int) -> list[list[int]]:
    ptr, items = work_lists.snake_lists(n_items, n_programs, "cpu")
    return _lists(ptr, items)


def dram_tiles(lists: list[list[int]], costs: np.ndarray, reads, capacity: int) -> tuple[int, int]:
    """(tile touches that miss an LRU cache of ``capacity`` tiles, all tile touches) when the
    programs walk ``lists``; ``reads(t)``: the keys of the tiles item t touches, in order."""
    events = []
    for items in lists:
        start = 0.0
        for t in items:
            keys = reads(t)
            for j, key in enumerate(keys):
                events.append((start + costs[t] * (j + 0.5) / len(keys), key))
            start += costs[t]
    events.sort(key=lambda e: e[0])
    cache, misses = collections.OrderedDict(), 0
    for _, key in events:
        if key in cache:
            cache.move_to_end(key)
            continue
        misses += 1
        cache[key] = None
        if len(cache) > capacity:
            cache.popitem(last=False)
    return misses, len(events)


def forward_case(bm, kv_heads: int, group: int, n_programs: int):
    """Items, costs, touched tiles and the two schedules of the forward (B=1, one map shared by
    every head; ``group`` query heads per KV head)."""
    heads = kv_heads * group
    rows = _tiles_of(bm.full_ptr, bm.full_idx, bm.part_ptr, bm.part_idx, bm.n_q_tiles)
    _, (_, h, qt, _) = flash_fwd_sm90._ranked_rows(bm, 1, heads, 0, 0)
    costs = flash_fwd_sm90.item_costs(bm, 1, heads, 0, 0)
    reads = lambda t: [(int(h[t]) // group, int(k)) for k in rows[qt[t]]]  # noqa: E731  (KV head, key tile)
    positions = flash_fwd_sm90.item_positions(bm, 1, heads, group, 0, 0)
    local = work_lists.balanced_lists(costs, n_programs, "cpu", positions)
    return costs, reads, {"snake": _snake(costs.size, n_programs), "locality lists": _lists(*local)}


def backward_case(bm, kv_heads: int, group: int, n_programs: int):
    """The same for the backward: items are key tiles of a KV head, touching the Q / dO / dQ rows
    of their column's query tiles for each of the ``group`` query heads."""
    cols = _tiles_of(bm.t_full_ptr, bm.t_full_idx, bm.t_part_ptr, bm.t_part_idx, bm.n_k_tiles)
    key_tile = bm.k_order.cpu().numpy()[0]
    costs = flash_bwd_sm90.item_costs(bm, 1, kv_heads, group, 0, 0)
    reads = lambda t: [(t % kv_heads * group + g, int(q))  # noqa: E731  (query head, query tile)
                       for g in range(group) for q in cols[key_tile[t // kv_heads]]]
    lpt = work_lists.balanced_lists(costs, n_programs, "cpu")
    positions = flash_bwd_sm90.item_positions(bm, 1, kv_heads, group, 0, 0)
    local = work_lists.balanced_lists(costs, n_programs, "cpu", positions)
    return costs, reads, {"cost-only lists": _lists(*lpt), "locality lists": _lists(*local)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kernel", choices=("fwd", "bwd"), default="fwd")
    ap.add_argument("--families", nargs="+", default=["documents", "sliding", "tree"])
    ap.add_argument("--lengths", nargs="+", type=int, default=[8192, 32768])
    ap.add_argument("--kv-heads", type=int, default=16)
    ap.add_argument("--group", type=int, default=1, help="query heads per KV head (GQA)")
    ap.add_argument("--programs", type=int, default=132, help="persistent programs (SMs)")
    ap.add_argument("--l2-mb", type=float, default=44.0, help="cache the operands may use (H100: 50 MB L2)")
    a = ap.parse_args(argv)
    held, moved = FOOTPRINT[a.kernel]
    capacity = int(a.l2_mb * 2**20 // held)
    case = forward_case if a.kernel == "fwd" else backward_case
    for family in a.families:
        for L in a.lengths:
            bm = ma.compile_mask(families.mask(family, L), L, L)
            costs, reads, schedules = case(bm, a.kv_heads, a.group, a.programs)
            line = f"{a.kernel} {family:10s} {L:6d} {a.kv_heads * a.group}:{a.kv_heads}:"
            mean = costs.sum() / a.programs
            for name, lists in schedules.items():
                misses, total = dram_tiles(lists, costs, reads, capacity)
                busiest = max(costs[items].sum() for items in lists) / mean
                line += (f" | {name} {misses * moved / 1e9:.2f} GB DRAM traffic ({misses}/{total} tiles missed),"
                         f" busiest program {busiest:.3f}x the mean")
            print(line, flush=True)


if __name__ == "__main__":
    main()
