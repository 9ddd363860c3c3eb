"""Split-KV decoding on the Hopper forward kernel, for short query blocks with many packed rows.

``decode.py`` splits the key range of a short query block (``q_len <= 64``) across programs and
packs the query heads of a KV head into one tile. Its kernel is portable Triton: at a few packed
rows (decoding 1-4 tokens) it streams K and V at the memory-bandwidth floor, but with a tile's
worth of rows (a 64-node speculative tree under GQA 4: 256 packed rows per KV head) the work is
matrix products and that kernel runs them at about half the tensor cores' rate.

Here the same work items - 128 packed rows ``p = head * Lq + r`` of one KV head's query heads
times one chunk of the row's key tiles - run on ``flash_fwd_sm90``'s warp-specialized kernel
(its ``PACKED`` mode: TMA loads of Q from the (B, Hq * Lq) view, bitmap rows ``p % Lq``, the
split's partials written in ``decode``'s layout); ``decode._decode_combine`` merges the splits.
The row blocks that read one K/V chunk are neighbours in the grid, so K and V come from HBM
about once per KV head.

A map of one query tile has no FULL tiles (a tile that sticks out past ``Lq`` never is), so every
key block here is a partial one. With one pass the producer lands each V block, cleans it of
non-finite values and only then loads the next block: on a 64-node tree over a 32k prefix
(B=4, H100) the consumers then waited for K 37% of their time and a block took ~3 us against
~1.7 on causal's full tiles. These items take the forward's two passes instead (V handed over
as it lands; the items are redone with cleaning only if an output met a NaN). And the items
read the map's row view through ``real_rows.real_row_map``: the tiles whose real rows allow
every key (the prefix of a verified tree) are full there, so only the tiles holding tree nodes
take the masked softmax.
"""
from __future__ import annotations

import torch

from ..block_map import BlockMap
from . import flash_fwd_sm90, relaunch
from .sm90_common import eligible

# When this kernel takes over from decode's portable one (H200, session 12, 64-node trees):
# * at least a full 128-row tile of packed rows per KV head: with 64 (a 16-node tree, GQA 4)
#   half of each tile's products are idle and the portable kernel is faster (0.88x);
# * at least 32 (batch, KV head, row block) units: with fewer the call is short and host-bound,
#   and this launch costs ~30 us more host time than the portable one (a 64-node tree at B=1,
#   16 units: kernel 111 us against 124, call 0.87x). At B=4 (64 units): kernel 389 us against
#   439 (profiler), call 0.343 ms against 0.454 (do_bench).
# Both were measured with the items' one pass; on two passes (session 39) the 64-node tree at B=4
# went from 0.394 to 0.267 ms, so the break-even points may now lie lower (not re-measured).
MIN_PACKED_ROWS = 128
MIN_UNITS = 32


def supported(q: torch.Tensor, bm: BlockMap, d_tma: int, softcap, packed_rows: int, units: int) -> bool:
    """Can the Hopper kernel run this split-KV decode, and should it? As the Hopper forward (sm_90,
    fp16/bf16, padded head dim 65-128, no softcap, key tiles >= 64), a map shared by all heads
    (packing), at least ``MIN_PACKED_ROWS`` packed rows per KV head and ``MIN_UNITS`` units of
    (batch, KV head, 128-row block). The caller also requires contiguous (not paged) K/V."""
    return (flash_fwd_sm90.ENABLED and eligible(q, softcap) and 64 < d_tma <= 128 and bm.block_k >= 64
            and bm.heads == 1 and packed_rows >= MIN_PACKED_ROWS and units >= MIN_UNITS)


def row_blocks(packed_rows: int) -> int:
    """128-row blocks of packed rows per (batch, KV head): the work items' second axis."""
    return -(-packed_rows // 128)


def split_kv_partials(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor, lse: torch.Tensor,
                      partials, bm: BlockMap, scale: float, d: int, d_tma: int, map_sb: int, n_splits: int,
                      record: bool = False):
    """q: (B, Hq, Lq, d_tma), k/v: (B, Hkv, Lk, d_tma), TMA-ready, with q's heads and rows
    mergeable into one axis (``q.stride(1) == Lq * q.stride(2)``); ``partials`` = (acc, m, l),
    fp32 flat buffers of (B, Hq, Lq, n_splits) rows (acc: d_tma values a row), as ``decode``
    lays them out. Writes every split's unnormalised partial result (m, l in log2 units);
    out (B, Hq, Lq, d) and lse (B, Hq, Lq) are the merge's outputs, passed along unwritten so
    that a replay substitutes them like the other tensors. With ``record``, returns the launch
    as a ``relaunch.Relaunch`` (slots: q, k, v, out, lse) where launches can be replayed, else None."""
    b, hq, lq, _ = q.shape
    if q.stride(1) != lq * q.stride(2):
        raise ValueError(f"q: heads and rows must merge into one axis (stride(1) == Lq * stride(2)), got strides "
                         f"{tuple(q.stride())} for shape {tuple(q.shape)}")
    n_qt = row_blocks(hq // k.shape[1] * lq)
    n_items = b * k.shape[1] * n_splits * n_qt
    grid = (n_items,)
    compiled, args, constexprs = flash_fwd_sm90.launch_sm90(grid, q, k, v, out, lse, partials, bm, scale, d, d_tma,
                                                            map_sb, 0, n_qt, n_items, n_splits, packed=True, passes=2)
    if not (record and relaunch.can_record(compiled)):
        return None
    return relaunch.Relaunch(flash_fwd_sm90._attn_fwd_sm90, compiled, grid, args, constexprs, {}, (0, 1, 2, 3, 4))
