"""Per-program work lists for a persistent kernel: which items each program walks, and in which
order, as compressed lists ``ptr`` (programs + 1,) and ``items`` (n_items,) int32 on the device
(program ``p`` walks ``items[ptr[p]:ptr[p + 1]]``).

Two ways to fill them:

* ``balanced_lists``: longest-processing-time first (LPT). Items are taken by descending
  estimated cost and each goes to the program with the least work so far (or the snake, where
  that evens out better). It needs the costs on the host, so callers read the map back once and
  cache the lists.
* ``snake_lists``: the snake of ``sm90_schedule`` (round ``r`` hands out items
  ``[r * P, (r + 1) * P)``, left to right in even rounds and right to left in odd ones), built
  with device ops only. It serves wherever the map cannot be read back (CUDA graph capture), and
  with ``P == n_items`` it is one item per program.

Given each item's place in a locality order (``positions``: neighbours there share their inputs,
e.g. key tiles of one head and document share that document's query rows), ``balanced_lists``
hands most items out in that order instead, each to the least-loaded program, so that the items
running at any time are neighbours and their shared rows stay in L2, and only a tail of it
costliest first (LPT), which evens the programs out. Why: LPT runs the heaviest items of every
head at once; on the H100 the backward on packed documents at 32k (16 heads) then read 2.17 TB/s
from DRAM at a 40% L2 hit rate (ncu, session 24), about 8 GB for ~1.3 GB of distinct data.

Why balance at all: with costs that fall off steeply (packed documents of exponential length) the snake evens
out the rounds only roughly. For the backward's items on the 8k documents map (B=1, 16 heads, 132
programs), its busiest program gets 1.07-1.18x the mean work under the cost model of
``flash_bwd_sm90.item_costs`` (1.13x at a partial tile cost of 1.6 full ones); LPT gets 1.01-1.02x.
"""
from __future__ import annotations

import heapq
from typing import Callable

import numpy as np
import torch

from . import plans


# locality schedules tried, as the share of items handed out costliest first at the end
LPT_TAILS = (1 / 8, 1 / 4, 1 / 2)
# a locality schedule is taken if its busiest program has at most this much more work than LPT's
# (or the snake's) busiest, relative to the mean: what L2 reuse must win back. H100, session 24: on
# documents 8k (+1.3% under the model) the locality lists ran 1.20x faster, on causal 8k (+2.0%
# against the snake, whose rounds already run neighbouring key tiles) 0.97x
LOCALITY_SLACK = 0.015


def balanced_lists(costs: np.ndarray, n_programs: int, device,
                   positions: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """costs: (n_items,) estimated work of each item, indexed by item number; positions:
    (n_items,) optional place of each item in a locality order (a permutation of the items'
    ranks). Returns (ptr, items) on ``device``. Without positions: the LPT lists, or the
    snake's where its busiest program has no more work than LPT's (greedy LPT is not optimal: on
    near-uniform costs such as a causal map's at 8k the snake evens out better). With them: the
    first of the locality schedules (items in locality order, the last ``LPT_TAILS`` share of it
    costliest first) whose busiest program is within ``LOCALITY_SLACK`` x the mean of LPT's,
    else as without. Every program's items are in the order they were handed out."""
    costs = np.asarray(costs, dtype=np.float64)
    n = costs.size
    _check_programs(n, n_programs)
    if positions is None:
        owner, handed = _lpt_or_snake(costs, n_programs)
    else:
        positions = np.asarray(positions, dtype=np.int64)
        if positions.shape != (n,):
            raise ValueError(f"positions: expected shape ({n},) (one per item), got {tuple(positions.shape)}")
        owner, handed = _locality_or_lpt(costs, n_programs, positions)
    items = np.lexsort((handed, owner))  # by program, then by the order they were handed out
    ptr = np.zeros(n_programs + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=n_programs), out=ptr[1:])
    return (torch.from_numpy(ptr.astype(np.int32)).to(device),
            torch.from_numpy(items.astype(np.int32)).to(device))


def _locality_or_lpt(costs: np.ndarray, n_programs: int, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner, handed) of the first locality schedule within the slack of LPT's (or the snake's)
    busiest program, else of that one."""
    slack = LOCALITY_SLACK * costs.sum() / n_programs
    # no schedule's busiest program has less than the mean work or the costliest item: a locality
    # schedule within the slack of that floor passes against LPT's too, which then need not be made
    # (the greedy's Python loop is the host cost: ~1.2 ms of 2.5 at 32k)
    # (the mean shaved by 1e-12 so that a rounding of it never puts the floor above LPT's busiest)
    floor = max(costs.sum() / n_programs * (1 - 1e-12), float(costs.max(initial=0.0)))
    fallback, fallback_busiest = None, float("inf")
    n = costs.size
    for tail in LPT_TAILS:
        in_tail = positions >= n - int(round(tail * n))
        order = np.lexsort((np.where(in_tail, -costs, positions), in_tail))  # locality order, then the tail
        local = _greedy(order, costs, n_programs)
        busiest = _busiest(local[0], costs, n_programs)
        if busiest > floor + slack and fallback is None:
            fallback = _lpt_or_snake(costs, n_programs)
            fallback_busiest = _busiest(fallback[0], costs, n_programs)
        if busiest <= floor + slack or busiest <= fallback_busiest + slack:
            return local
    return fallback


def _lpt_or_snake(costs: np.ndarray, n_programs: int) -> tuple[np.ndarray, np.ndarray]:
    """(owner, handed) of the LPT lists, or of the snake where its busiest program has no more work."""
    owner, handed = _greedy(np.argsort(-costs, kind="stable"), costs, n_programs)
    t = np.arange(costs.size)
    snake = _snake_owner(t, n_programs)
    if _busiest(snake, costs, n_programs) <= _busiest(owner, costs, n_programs):
        return snake, t
    return owner, handed


def _greedy(order: np.ndarray, costs: np.ndarray, n_programs: int) -> tuple[np.ndarray, np.ndarray]:
    """Items handed out in ``order``, each to the program with the least work so far (ties to the
    lower program). Returns (owner, handed): each item's program and its place in ``order``."""
    owner = np.empty(costs.size, dtype=np.int64)
    heap = [(0.0, p) for p in range(n_programs)]  # (work so far, program)
    for t, c in zip(order.tolist(), costs[order].tolist()):
        load, p = heap[0]
        heapq.heapreplace(heap, (load + c, p))
        owner[t] = p
    handed = np.empty(costs.size, dtype=np.int64)
    handed[order] = np.arange(costs.size)
    return owner, handed


def _snake_owner(t, n_programs: int):
    """The program of item(s) ``t`` in the snake (numpy or torch integers, elementwise)."""
    r, i = t // n_programs, t % n_programs
    return i + (r % 2) * (n_programs - 1 - 2 * i)  # i in even rounds, P - 1 - i in odd ones


def _busiest(owner: np.ndarray, costs: np.ndarray, n_programs: int) -> float:
    return float(np.bincount(owner, weights=costs, minlength=n_programs).max())


def _check_programs(n_items: int, n_programs: int) -> None:
    if not 1 <= n_programs <= max(n_items, 1):
        raise ValueError(f"n_programs: expected 1 to {max(n_items, 1)} (the number of items), got {n_programs}")


def snake_lists(n_items: int, n_programs: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The snake schedule as lists, from device ops only (no host reads: safe under CUDA graph
    capture). Returns (ptr, items) on ``device``; each program's items in round order."""
    _check_programs(n_items, n_programs)
    t = torch.arange(n_items, device=device)
    owner = _snake_owner(t, n_programs)
    items = torch.argsort(owner * n_items + t)  # keys are distinct: by program, then round
    # each program's first entry by a search of the sorted owners (bincount would read its range back)
    ptr = torch.searchsorted(owner[items], torch.arange(n_programs + 1, device=device))
    return ptr.to(torch.int32), items.to(torch.int32)


def map_lists(bm, kind: str, key, n_items: int, n_programs: int,
              estimate: Callable[[], tuple[np.ndarray, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Work lists of a launch of ``n_programs`` over ``n_items`` items of map ``bm``, kept on the
    map under (``kind``, ``key``) for later calls: one item each when there is a program per item;
    else ``balanced_lists`` on ``estimate() -> (costs, positions)`` (which reads the map back), or
    the snake while a CUDA graph is being captured (the map cannot be read back then)."""
    cached = plans.recall(bm, kind, key)
    if cached is not None:
        return cached
    capturing = plans.capturing(bm.device)
    if n_programs == n_items or capturing:
        lists = snake_lists(n_items, n_programs, bm.device)
    else:
        costs, positions = estimate()
        lists = balanced_lists(costs, n_programs, bm.device, positions)
    if not capturing:  # buffers made during a capture belong to that graph
        plans.remember(bm, kind, key, lists)
    return lists
