"""Key tiles of the Hopper backward cut into parts: where one key tile is seen by many more query
tiles than the others (Longformer's global keys, a tree's shared trunk), its work is split over
several programs, whose dK / dV are added in fp32.

The Hopper backward (``flash_bwd_sm90``) gives each key tile of a (batch, KV head) to one program,
which walks the tile's column (every query tile that sees it, for each query head of the KV head)
and writes its dK and dV once. On a persistent grid the busiest program then carries at least the
heaviest key tile: Longformer at 8k (16 heads, 132 SMs) has a global key tile of 64 query tiles
where the mean program walks ~40, so the busiest program gets 1.3x the mean work however the
lists are dealt (``work_lists``). On such maps (``flash_bwd_sm90.column_bound``) an item whose
work exceeds ``SPLIT_SHARE`` of the mean work per SM is cut into parts of about equal cost, each a
contiguous range of the item's 64-row query blocks (the column's blocks for its first query head,
then its second ...; full tiles before partial ones, as the kernel walks them). A part loads the
tile's K and V like any item and, at its end, adds its dK and dV with fp32 atomics into a slot of
an accumulator ``(slots, 2, TILE_K, D)`` (dK, then dV) instead of storing them; after the launch
the slots are cast into dK and dV (``finish``). Items that are not cut store as before.

Extra memory: 2 x TILE_K x D x 4 bytes per cut key tile (a few of them per (batch, KV head)). The
order of the fp32 additions varies, as for dQ: this path is not bitwise reproducible either.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# an item is cut when its work exceeds this share of the mean work per SM: parts of about half
# the mean leave the lists room to even the programs out
SPLIT_SHARE = 0.5
# a part's extra cost, in ``flash_bwd_sm90.item_costs`` units (64-row full blocks): its own K / V
# load and 2 x 64 fp32 atomic adds per thread at its end (estimate)
SPLIT_COST = 2.0
NOT_CUT = 2**30  # the stop block of an item that is not cut: past any column


@dataclass
class SplitWork:
    """The parts of one launch. ``parts``: (n_parts, 4) int32 on the device, one row per part
    (item number, first and stop block in the item's flattened query blocks, dK / dV slot or -1
    where the item is not cut); ``costs`` / ``positions``: (n_parts,) host arrays for the work
    lists; ``slot_items``: (n_slots,) the item each slot belongs to."""
    parts: torch.Tensor
    costs: np.ndarray
    positions: np.ndarray
    slot_items: np.ndarray

    @property
    def n_slots(self) -> int:
        return int(self.slot_items.size)


def cut_items(full: np.ndarray, partial: np.ndarray, costs: np.ndarray, positions: np.ndarray, cap: float,
              block_costs: tuple[float, float], blocks_per_tile: int, device) -> SplitWork:
    """full / partial: (n_items, group) query tiles of each item's column per query head; costs,
    positions: (n_items,) the items' estimated work and locality order (``flash_bwd_sm90``);
    cap: the largest work of a part (besides its fixed cost; at least two blocks' cost);
    block_costs: (full, partial) cost of one 64-row block. An item whose work (its cost less its
    fixed cost) exceeds ``cap`` becomes ``ceil(work / cap)`` parts cut where the cumulative block
    cost comes nearest to equal shares; the others stay whole."""
    full = np.asarray(full, dtype=np.int64) * blocks_per_tile
    partial = np.asarray(partial, dtype=np.int64) * blocks_per_tile
    work = full.sum(1) * block_costs[0] + partial.sum(1) * block_costs[1]
    fixed = np.asarray(costs, dtype=np.float64) - work  # the item's own start and end
    cap = max(cap, 2 * max(block_costs))
    rows, part_costs, slot_items = [], [], []
    for t in range(work.size):
        n_parts = int(np.ceil(work[t] / cap)) if work[t] > cap else 1
        if n_parts == 1:
            rows.append((t, 0, NOT_CUT, -1))
            part_costs.append(costs[t])
            continue
        # the item's blocks in the kernel's order: per query head, full tiles' blocks then partial ones'
        per_block = np.concatenate([np.repeat(block_costs, (f, p)) for f, p in zip(full[t], partial[t])])
        cum = np.concatenate(([0.0], np.cumsum(per_block)))  # cost of the first b blocks
        targets = work[t] * np.arange(1, n_parts) / n_parts
        above = np.searchsorted(cum, targets)  # the fewest blocks that reach each share
        cuts = np.where(cum[above] - targets < targets - cum[above - 1], above, above - 1)  # the nearer
        bounds = np.unique(np.concatenate(([0], cuts, [per_block.size])))
        slot = len(slot_items)
        slot_items.append(t)
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            rows.append((t, int(lo), int(hi), slot))
            part_costs.append(per_block[lo:hi].sum() + fixed[t] + SPLIT_COST)
    table = np.asarray(rows, dtype=np.int64)
    # parts take their item's place in the locality order, in block order, renumbered 0..n_parts-1
    order = np.lexsort((table[:, 1], np.asarray(positions)[table[:, 0]]))
    part_positions = np.empty(len(rows), dtype=np.int64)
    part_positions[order] = np.arange(len(rows))
    return SplitWork(torch.from_numpy(table.astype(np.int32)).to(device), np.asarray(part_costs, dtype=np.float64),
                     part_positions, np.asarray(slot_items, dtype=np.int64))


def slot_rows(slot_items: np.ndarray, item_tiles: np.ndarray, n_bk: int, lk: int, tile_k: int, device):
    """Rows of the cut key tiles: (destination rows of dK / dV viewed as (B * Hkv * Lk, D), the
    matching rows of one half of the accumulator viewed as (slots * tile_k, D)), both int64 on
    ``device``. ``item_tiles``: (n_items,) the key tile of each item; item ``t`` belongs to
    (batch, KV head) ``t % n_bk`` (``flash_bwd_sm90._key_tile``). Keys past ``lk`` are left out."""
    dst, src = [], []
    for s, t in enumerate(slot_items.tolist()):
        n0 = int(item_tiles[t]) * tile_k
        r = np.arange(min(tile_k, lk - n0))
        dst.append((t % n_bk) * lk + n0 + r)
        src.append(s * tile_k + r)
    cat = (lambda x: np.concatenate(x)) if dst else (lambda x: np.zeros(0, dtype=np.int64))
    return (torch.from_numpy(cat(dst).astype(np.int64)).to(device),
            torch.from_numpy(cat(src).astype(np.int64)).to(device))


@dataclass
class CutTiles:
    """What a launch with cut key tiles needs besides its arguments, kept to replay it (``plans``):
    the accumulator's shape (slots, 2, TILE_K, D), the rows of ``slot_rows``, and the accumulator's
    position among the launch's arguments."""
    shape: tuple
    dst: torch.Tensor
    src: torch.Tensor
    slot: int

    def accumulator(self, device) -> torch.Tensor:
        """A zeroed fp32 accumulator for one launch."""
        return torch.zeros(self.shape, dtype=torch.float32, device=device)

    def finish(self, acc: torch.Tensor, dk: torch.Tensor, dv: torch.Tensor) -> None:
        finish(acc, dk, dv, self.dst, self.src)


def finish(acc: torch.Tensor, dk: torch.Tensor, dv: torch.Tensor, dst: torch.Tensor, src: torch.Tensor) -> None:
    """Cast the accumulated dK / dV of the cut key tiles into ``dk`` / ``dv`` ((B, Hkv, Lk, D)
    contiguous). acc: (slots, 2, TILE_K, D) fp32; dst / src from ``slot_rows``."""
    d = dk.shape[-1]
    for i, out in enumerate((dk, dv)):
        out.view(-1, d).index_copy_(0, dst, acc[:, i].reshape(-1, d).index_select(0, src).to(out.dtype))
