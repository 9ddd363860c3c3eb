"""The row view of a one-query-tile map as the decode kernels read it: partial tiles whose real
rows allow every key moved to the full list.

A tile that sticks out past ``Lq`` is never FULL (``BlockMap``'s rule: kernels skip bounds checks
on full tiles). A map of one query tile sticks out unless ``q_len == block_q``, so for decoding and
tree verification every non-empty tile is PARTIAL, and the split-KV kernels (``decode.py``, the
Hopper forward's packed items) take the masked path on every key block: bitmap words, ``where``
on the scores, and in the portable kernel V cleaned of non-finite values. Those kernels never
store a row past ``q_len`` (nor a packed row past a KV head's own), so for them a tile whose real
rows allow all of its keys needs no mask. ``real_row_map`` returns a map whose row view has such
tiles in the full list: one launch, no host synchronisation, cached on the map outside CUDA graph
capture (calls through the custom op, i.e. under torch.compile, get a new ``BlockMap`` object
from the op's arguments each time, so there the launch comes with every call). A tile that sticks
out past ``Lk`` keeps zero bits there and stays partial.

Only maps of a single map row (one mask for every batch row and head) are converted: with several
rows the new lists of a row would start at offsets that depend on the other rows' conversions
(one program per map, no prefix sums across programs). The result's column view and ``bitmaps``
no longer match (``t_part_slot`` indexes the original bitmaps), so it serves the decode launches
only and never leaves ``decode_forward``.
"""
from __future__ import annotations

import dataclasses

import torch
import triton
import triton.language as tl

from ..block_map import BlockMap
from . import plans
from .relaunch import launch_direct

_CACHED = "_real_row_map"  # where the converted map lives on the original (``BlockMap.__dict__``)
_ENTRIES = 64  # list entries per step of the kernel
_ROWS = 16  # bitmap rows per step of its test


@triton.jit
def _real_row_lists(FULL_PTR, FULL_IDX, PART_PTR, PART_IDX, BITMAPS, PTRS, NEW_FULL_IDX, NEW_PART_IDX, NEW_BITMAPS,
                    KEPT_AT, Lq, full_cap, part_cap, ENTRIES: tl.constexpr, ROWS: tl.constexpr,
                    TILE_Q: tl.constexpr, WORDS: tl.constexpr):
    """Map row 0: its full tiles, then the partial ones whose words are all ones on rows < Lq, into
    NEW_FULL_IDX; the other partial tiles and their words into NEW_PART_IDX / NEW_BITMAPS (list
    order kept); PTRS = (0, new full count, 0, new partial count). List entries past the counts are
    zeros, as the map builders leave them. The test reads only the Lq real rows, ROWS at a time;
    the few kept tiles' words are copied whole afterwards (KEPT_AT: their list positions)."""
    e = tl.arange(0, ENTRIES)
    rows = tl.arange(0, ROWS)
    words = tl.arange(0, WORDS)
    n_full = tl.load(FULL_PTR + 1)
    n_part = tl.load(PART_PTR + 1)
    for e0 in range(0, n_full, ENTRIES):
        ok = e0 + e < n_full
        tl.store(NEW_FULL_IDX + e0 + e, tl.load(FULL_IDX + e0 + e, mask=ok), mask=ok)
    full_end = n_full
    part_end = n_part * 0
    for e0 in range(0, n_part, ENTRIES):
        pos = e0 + e
        ok = pos < n_part
        all_ones = ok.to(tl.int32)
        for r0 in range(0, Lq, ROWS):
            r = r0 + rows
            src = (BITMAPS + pos.to(tl.int64)[:, None, None] * (TILE_Q * WORDS) + r[None, :, None] * WORDS
                   + words[None, None, :])
            bits = tl.load(src, mask=ok[:, None, None] & (r < Lq)[None, :, None], other=-1)
            all_ones = tl.minimum(all_ones, tl.min(tl.min((bits == -1).to(tl.int32), 2), 1))
        every = ok & (all_ones == 1)
        keep = ok & (all_ones == 0)
        tile = tl.load(PART_IDX + pos, mask=ok, other=0)
        to_full = every.to(tl.int32)
        to_part = keep.to(tl.int32)
        at_full = full_end + tl.cumsum(to_full, 0) - to_full  # list order kept
        at_part = part_end + tl.cumsum(to_part, 0) - to_part
        tl.store(NEW_FULL_IDX + at_full, tile, mask=every)
        tl.store(NEW_PART_IDX + at_part, tile, mask=keep)
        tl.store(KEPT_AT + at_part, pos, mask=keep)
        full_end += tl.sum(to_full, 0)
        part_end += tl.sum(to_part, 0)
    tile_words = tl.arange(0, TILE_Q)[:, None] * WORDS + words[None, :]
    for i in range(0, part_end):  # the kept tiles' words, every row (few: tiles holding tree nodes)
        src = tl.load(KEPT_AT + i).to(tl.int64)
        tl.store(NEW_BITMAPS + i * (TILE_Q * WORDS) + tile_words, tl.load(BITMAPS + src * (TILE_Q * WORDS) + tile_words))
    for e0 in range(full_end, full_cap, ENTRIES):
        tl.store(NEW_FULL_IDX + e0 + e, tl.zeros_like(e), mask=e0 + e < full_cap)
    for e0 in range(part_end, part_cap, ENTRIES):
        tl.store(NEW_PART_IDX + e0 + e, tl.zeros_like(e), mask=e0 + e < part_cap)
    tl.store(PTRS, 0)
    tl.store(PTRS + 1, full_end)
    tl.store(PTRS + 2, 0)
    tl.store(PTRS + 3, part_end)


def convertible(bm: BlockMap) -> bool:
    """A map of one query tile sticking out past ``q_len`` and one map row, with partial tiles to
    look at. (A tile that fills ``q_len == block_q`` rows and is not FULL has a zero bit on a real
    row, or sticks out past ``Lk`` with zero bits there: nothing would move, so no launch.)"""
    return (bm.n_q_tiles == 1 and bm.q_len < bm.block_q and bm.batch == 1 and bm.heads == 1
            and bm.part_idx.numel() > 0)


def real_row_map(bm: BlockMap) -> BlockMap:
    """``bm`` with the partial tiles whose rows ``< q_len`` allow every key moved into its full list
    (row view only: see the module docstring); ``bm`` itself where it is not ``convertible``.
    Kept on ``bm`` (one launch per map, e.g. once per decode step), except during CUDA graph
    capture, where the graph must own what it allocates."""
    if not convertible(bm):
        return bm
    cached = bm.__dict__.get(_CACHED)
    if cached is not None:
        return cached
    cap_f, cap_p = bm.full_idx.numel() + bm.part_idx.numel(), bm.part_idx.numel()
    dev = bm.full_idx.device
    # pointers, then the two index lists: one allocation, each part 16-byte aligned as a fresh tensor
    at_f = 4
    at_p = at_f + -(-cap_f // 4) * 4
    at_k = at_p + -(-cap_p // 4) * 4
    ints = torch.empty(at_k + cap_p, dtype=torch.int32, device=dev)
    ptrs, full_idx, part_idx = ints[:4], ints[at_f:at_f + cap_f], ints[at_p:at_p + cap_p]
    kept_at = ints[at_k:]  # scratch: list positions of the kept partial tiles
    bitmaps = torch.empty_like(bm.bitmaps)
    words = bm.bitmaps.shape[-1]
    launch_direct(_real_row_lists, (1,),
                  (bm.full_ptr, bm.full_idx, bm.part_ptr, bm.part_idx, bm.bitmaps, ptrs, full_idx, part_idx, bitmaps,
                   kept_at, bm.q_len, cap_f, cap_p),
                  dict(ENTRIES=_ENTRIES, ROWS=min(bm.block_q, _ROWS), TILE_Q=bm.block_q, WORDS=words),
                  dict(num_warps=8))
    real = dataclasses.replace(bm, full_ptr=ptrs[:2], full_idx=full_idx, part_ptr=ptrs[2:], part_idx=part_idx,
                               bitmaps=bitmaps)
    if not plans.capturing(dev):
        bm.__dict__[_CACHED] = real
    return real
