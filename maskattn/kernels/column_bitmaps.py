"""Key-major bitmaps of a map's column view, for the Hopper backward's partial tiles.

``BlockMap.bitmaps`` is query-major: word ``[p, r, c // 32]`` holds 32 keys of query row ``r``.
The backward computes S^T (keys on rows, queries on columns), and in the wgmma register layout a
thread holds 2 key rows x 16 query columns: query-major words cost it 32 global loads per 64 x 64
block (two words per query column, one of them discarded), and their latency sat exposed after
the S^T product (H100, session 24, documents 32k: a partial block took 2.7x a full one, half of
its stall samples on those loads). Key-major words give the same thread 4 loads (2 keys x 2 words
of 32 queries), issued before the products.

``column_bitmaps(bm)``: ``(n_entries, block_k, block_q // 32)`` int32, entry ``e`` the transpose
of the partial tile of column-view entry ``e`` (``bm.t_part_idx[e]``): bit ``r % 32`` of word
``[e, c, r // 32]`` is 1 iff query row ``r`` may attend key ``c`` of that tile. Indexed by entry
rather than by bitmap slot, so the kernel needs no ``t_part_slot`` load before the bits. Built
with device ops only (safe under CUDA graph capture) and kept on the map; memory as
``bm.bitmaps`` (linear in the number of partial tiles).
"""
from __future__ import annotations

import torch

from . import plans

_KIND = "_column_bitmaps"
# tiles transposed at once: bounds the unpacked temporaries, one int32 per bit (256 tiles of 128 x 128:
# 16 MB each, a few alive at once)
_CHUNK = 256


def transpose_bitmaps(bitmaps: torch.Tensor, block_q: int, block_k: int) -> torch.Tensor:
    """bitmaps: (n, block_q, block_k // 32) int32, query-major -> (n, block_k, block_q // 32)
    int32, key-major (the same bits, tile by tile transposed). block_q, block_k: multiples of 32."""
    n = bitmaps.shape[0]
    out = torch.empty((n, block_k, block_q // 32), dtype=torch.int32, device=bitmaps.device)
    shifts = torch.arange(32, dtype=torch.int32, device=bitmaps.device)
    weights = torch.ones((), dtype=torch.int32, device=bitmaps.device) << shifts  # bit 31 wraps to -2**31
    for s in range(0, n, _CHUNK):
        words = bitmaps[s:s + _CHUNK]
        bits = ((words[..., None] >> shifts) & 1).reshape(-1, block_q, block_k)  # [tile, query, key]
        key_major = bits.transpose(1, 2).reshape(-1, block_k, block_q // 32, 32)
        # the bits are disjoint, so their sum is their OR (int32 addition wraps like the bit pattern)
        out[s:s + _CHUNK] = (key_major * weights).sum(-1, dtype=torch.int32)
    return out


def column_bitmaps(bm) -> torch.Tensor:
    """The key-major bitmap of every column-view partial entry of ``bm`` (module docstring),
    kept on the map; under CUDA graph capture built into the graph and not kept."""
    cached = plans.recall(bm, _KIND, "key_major")
    if cached is not None:
        return cached
    n_slots = bm.bitmaps.shape[0]
    if n_slots == 0:
        result = torch.zeros((bm.t_part_slot.shape[0], bm.block_k, bm.block_q // 32), dtype=torch.int32,
                             device=bm.device)
    else:
        # unused entries past the pointers (maps built without a read-back) may hold any slot
        slots = bm.t_part_slot.long().clamp(0, n_slots - 1)
        result = transpose_bitmaps(bm.bitmaps[slots], bm.block_q, bm.block_k)
    if not plans.capturing(bm.device):
        plans.remember(bm, _KIND, "key_major", result)
    return result
