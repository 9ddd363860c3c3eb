"""The forward's counter schedule (causal, Longformer: programs take items in numbering order as
they free up; ``--kernel bwd``: the backward's one program per key tile on long columns, which the
hardware starts in launch order as SMs free up) under the DRAM-traffic model of ``benchmarks/l2_traffic_model.py``: today's order
(rank-major over every head: all heads' heaviest query tiles first) against FlashAttention-3's
"LPT with head swizzle" (heads in sections whose K / V fit the L2, heaviest first inside a section).

    python benchmarks/results/session27/counter_order_model.py --lengths 8192 32768
"""
from __future__ import annotations

import argparse
import heapq
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
from benchmarks import families  # noqa: E402
from benchmarks.l2_traffic_model import FOOTPRINT, TILE_BYTES, backward_case, dram_tiles, forward_case  # noqa: E402
import maskattn as ma  # noqa: E402


def greedy(order: np.ndarray, costs: np.ndarray, n_programs: int) -> list[list[int]]:
    """Items taken in ``order`` by whichever program frees up first (the counter)."""
    heap = [(0.0, p) for p in range(n_programs)]
    lists = [[] for _ in range(n_programs)]
    for t in order:
        free, p = heapq.heappop(heap)
        lists[p].append(int(t))
        heapq.heappush(heap, (free + costs[t], p))
    return lists


def sectioned(n_heads: int, n_ranks: int, per_section: int) -> np.ndarray:
    """Item numbers (t = rank * n_heads + head) in the order of sections of ``per_section`` heads,
    rank-major inside each section."""
    out = []
    for s0 in range(0, n_heads, per_section):
        heads = np.arange(s0, min(n_heads, s0 + per_section))
        out.append((np.arange(n_ranks)[:, None] * n_heads + heads[None, :]).reshape(-1))
    return np.concatenate(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kernel", choices=("fwd", "bwd"), default="fwd")
    ap.add_argument("--families", nargs="+", default=["causal", "longformer"])
    ap.add_argument("--lengths", nargs="+", type=int, default=[8192, 32768])
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--sections", nargs="+", type=int, default=[1, 2, 4, 8])
    ap.add_argument("--programs", type=int, default=132)
    ap.add_argument("--l2-mb", type=float, default=44.0)
    args = ap.parse_args()
    held, moved = FOOTPRINT[args.kernel]
    capacity = int(args.l2_mb * 2**20 // held)
    case = forward_case if args.kernel == "fwd" else backward_case
    for fam in args.families:
        for L in args.lengths:
            bm = ma.compile_mask(families.mask(fam, L), L, L)
            costs, reads, _ = case(bm, args.heads, 1, args.programs)
            n_ranks = costs.size // args.heads
            orders = {"all heads (today)": np.arange(costs.size)}
            orders.update({f"sections of {s}": sectioned(args.heads, n_ranks, s) for s in args.sections})
            for name, order in orders.items():
                lists = greedy(order, costs, args.programs)
                busiest = max(sum(costs[t] for t in li) for li in lists)
                misses, touches = dram_tiles(lists, costs, reads, capacity)
                print(f"{args.kernel} {fam:10s} {L:6d} {name:18s} DRAM {misses * moved / 1e9:6.2f} GB of "
                      f"{touches * moved / 1e9:6.2f} GB touched | busiest {busiest / costs.sum() * args.programs:.3f}x mean",
                      flush=True)


if __name__ == "__main__":
    main()
