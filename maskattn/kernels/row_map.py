"""The lists of a single-query-tile ``BlockMap`` built by two Triton kernels.

``compile_row.py`` evaluates the mask on the ``q_len`` real rows times every key (a few torch
operations, as many as the mask has) and hands the bits here. Building the map from them in
torch takes some forty small operations, each a kernel launch of a few microseconds: most of
a decode step's mask preparation. Here it takes three launches:

* ``_tile_words`` (one program per tile): counts the allowed pairs of the tile and packs its
  bits into 32-bit words (bit ``c % 32`` of word ``c // 32``, the ``BlockMap`` layout).
* ``_tile_lists`` (one program per (batch row, head)): classifies its tiles from the counts
  (none allowed: EMPTY, every one: FULL, else PARTIAL), places them in the row and column
  views by prefix sums (the counts of the groups before it are read, not waited for), and
  writes the work order, the statistics and the fixed lists.
* one ``index_select`` gathers the words of the partial tiles in list order.

Sizes are those of the torch build: lists padded to ``groups * Tk`` entries with zeros past
their pointers' last value, so nothing waits for the host.
"""
from __future__ import annotations

import functools
import math

import torch
import triton
import triton.language as tl

from .config import next_pow2
from .relaunch import launch_direct

_WARPS = dict(num_warps=4)


@triton.jit
def _tile_words(BITS, N_TRUE, WORDS, sb, sh, sr, sc, heads, Lq, Lk, n_k_tiles,
                BLOCK_Q: tl.constexpr, BLOCK_K: tl.constexpr):
    """Tile ``t`` of group ``g``: N_TRUE[g * Tk + t] = allowed pairs, WORDS[g * Tk + t] = its
    (BLOCK_Q, BLOCK_K // 32) packed bits; rows past Lq and keys past Lk count as not allowed."""
    g = tl.program_id(0)
    t = tl.program_id(1)
    r = tl.arange(0, BLOCK_Q)
    c = t * BLOCK_K + tl.arange(0, BLOCK_K)
    ok = (r < Lq)[:, None] & (c < Lk)[None, :]
    src = (BITS + (g // heads).to(tl.int64) * sb + (g % heads).to(tl.int64) * sh
           + r.to(tl.int64)[:, None] * sr + c.to(tl.int64)[None, :] * sc)
    bit = (tl.load(src, mask=ok, other=0) != 0).to(tl.int32)
    tile = g * n_k_tiles + t
    tl.store(N_TRUE + tile, tl.sum(tl.sum(bit, 1), 0))
    N_WORDS: tl.constexpr = BLOCK_K // 32
    # distinct powers of two: their sum is their bitwise or (bit 31 wraps to the sign, as intended)
    shifted = bit << (tl.arange(0, BLOCK_K) % 32)[None, :]
    words = tl.sum(tl.reshape(shifted, (BLOCK_Q, N_WORDS, 32)), 2)
    dst = tile.to(tl.int64) * (BLOCK_Q * N_WORDS) + tl.arange(0, BLOCK_Q)[:, None] * N_WORDS \
        + tl.arange(0, N_WORDS)[None, :]
    tl.store(WORDS + dst, words)


@triton.jit
def _tile_lists(N_TRUE, FULL_PTR, PART_PTR, FULL_IDX, PART_IDX, PART_POS, T_FULL_PTR, T_PART_PTR,
                T_FULL_IDX, T_PART_IDX, T_PART_SLOT, Q_ORDER, K_ORDER, NUM_ALLOWED,
                groups, n_k_tiles, tile_size, CHUNK: tl.constexpr):
    """Group ``g`` (one map row): its entries of every list. FULL tiles are those with
    ``tile_size`` allowed pairs, PARTIAL those with some. Positions in the flat lists are the
    FULL / PARTIAL tiles of the groups before ``g`` plus the rank inside ``g``."""
    g = tl.program_id(0)
    n = groups * n_k_tiles
    g0 = g * n_k_tiles
    # pass 1: FULL / PARTIAL tiles before this group, in it, and in all groups
    full_before = 0
    part_before = 0
    full_all = 0
    part_all = 0
    full_mine = 0
    part_mine = 0
    allowed = tl.zeros([CHUNK], tl.int64)
    for start in range(0, n, CHUNK):
        idx = start + tl.arange(0, CHUNK)
        cnt = tl.load(N_TRUE + idx, mask=idx < n, other=0)
        full = (cnt == tile_size).to(tl.int32)
        part = ((cnt > 0) & (cnt < tile_size)).to(tl.int32)
        before = idx < g0
        mine = (idx >= g0) & (idx < g0 + n_k_tiles)
        full_before += tl.sum(tl.where(before, full, 0), 0)
        part_before += tl.sum(tl.where(before, part, 0), 0)
        full_mine += tl.sum(tl.where(mine, full, 0), 0)
        part_mine += tl.sum(tl.where(mine, part, 0), 0)
        full_all += tl.sum(full, 0)
        part_all += tl.sum(part, 0)
        allowed += tl.where(mine, cnt, 0).to(tl.int64)
    # pass 2: this group's tiles in order, ranked by prefix sums
    full_seen = 0
    part_seen = 0
    empty_seen = 0
    for start in range(0, n_k_tiles, CHUNK):
        t = start + tl.arange(0, CHUNK)
        ok = t < n_k_tiles
        cnt = tl.load(N_TRUE + g0 + t, mask=ok, other=0)
        is_full = ok & (cnt == tile_size)
        is_part = ok & (cnt > 0) & (cnt < tile_size)
        is_empty = ok & (cnt == 0)
        full_rank = full_seen + tl.cumsum(is_full.to(tl.int32), 0)  # inclusive ranks
        part_rank = part_seen + tl.cumsum(is_part.to(tl.int32), 0)
        empty_rank = empty_seen + tl.cumsum(is_empty.to(tl.int32), 0)
        tl.store(FULL_IDX + full_before + full_rank - 1, t, mask=is_full)
        tl.store(PART_IDX + part_before + part_rank - 1, t, mask=is_part)
        tl.store(PART_POS + part_before + part_rank - 1, g0 + t, mask=is_part)
        # column view: one query tile, so a column holds at most one tile
        col = g0 + t
        tl.store(T_FULL_PTR + col + 1, full_before + full_rank, mask=ok)
        tl.store(T_PART_PTR + col + 1, part_before + part_rank, mask=ok)
        tl.store(T_FULL_IDX + col, tl.zeros_like(t), mask=ok)
        tl.store(T_PART_IDX + col, tl.zeros_like(t), mask=ok)
        tl.store(T_PART_SLOT + col, col, mask=ok)  # the columns in order are the partial tiles in order
        # work order, heaviest first: PARTIAL tiles, then FULL, then EMPTY, each in key order
        pos = tl.where(is_part, part_rank - 1,
                       tl.where(is_full, part_mine + full_rank - 1, part_mine + full_mine + empty_rank - 1))
        tl.store(K_ORDER + g0 + pos, t, mask=ok)
        # entries past the lists' ends: zeros (slot ``col`` holds a real entry of no group there)
        tl.store(FULL_IDX + col, tl.zeros_like(t), mask=ok & (col >= full_all))
        tl.store(PART_IDX + col, tl.zeros_like(t), mask=ok & (col >= part_all))
        tl.store(PART_POS + col, tl.zeros_like(t), mask=ok & (col >= part_all))
        full_seen += tl.sum(is_full.to(tl.int32), 0)
        part_seen += tl.sum(is_part.to(tl.int32), 0)
        empty_seen += tl.sum(is_empty.to(tl.int32), 0)
    tl.store(FULL_PTR + g, full_before)
    tl.store(PART_PTR + g, part_before)
    tl.store(Q_ORDER + g, 0)
    tl.store(NUM_ALLOWED + g, tl.sum(allowed, 0))
    if g == groups - 1:
        tl.store(FULL_PTR + groups, full_all)
        tl.store(PART_PTR + groups, part_all)
    if g == 0:
        tl.store(T_FULL_PTR, 0)
        tl.store(T_PART_PTR, 0)


def build_row_lists(bits: torch.Tensor, q_len: int, kv_len: int, block_q: int, block_k: int) -> dict:
    """bits: (B, H, q_len, kv_len) bool (any strides, broadcast dimensions included) -> the
    ``BlockMap`` fields of a one-query-tile map with ``B * H`` groups, lists padded to
    ``B * H * Tk`` entries (see the module docstring)."""
    nb, nh = bits.shape[:2]
    groups, tk = nb * nh, -(-kv_len // block_k)
    n, dev = groups * tk, bits.device
    size, layout = _layout(nb, nh, tk, block_q, block_k)
    buf = torch.empty(size, dtype=torch.int32, device=dev)
    f = {name: buf.as_strided(shape, stride, offset) for name, shape, stride, offset in layout}
    f["num_allowed"] = f["num_allowed"].view(torch.int64).view(nb, nh)
    n_true, words, part_pos = f.pop("n_true"), f.pop("words"), f.pop("part_pos")
    # launched without Triton's per-call binding where possible (a decode step builds its map every step)
    launch_direct(_tile_words, (groups, tk), (bits.view(torch.uint8), n_true, words, *bits.stride(), nh, q_len,
                                              kv_len, tk), dict(BLOCK_Q=block_q, BLOCK_K=block_k), _WARPS)
    launch_direct(_tile_lists, (groups,), (n_true, f["full_ptr"], f["part_ptr"], f["full_idx"], f["part_idx"], part_pos,
                                           f["t_full_ptr"], f["t_part_ptr"], f["t_full_idx"], f["t_part_idx"],
                                           f["t_part_slot"], f["q_order"], f["k_order"], f["num_allowed"], groups, tk,
                                           block_q * block_k), dict(CHUNK=min(1024, next_pow2(max(tk, 16)))), _WARPS)
    f["bitmaps"] = words.index_select(0, part_pos)
    return f


@functools.lru_cache(maxsize=256)
def _layout(nb: int, nh: int, tk: int, block_q: int, block_k: int):
    """Every int32 output of ``build_row_lists`` as a view of one buffer: (buffer size, ((name,
    shape, strides, offset), ...)). One allocation instead of fourteen, and each view made by a
    single ``as_strided`` (a decode step builds its map every step: each tensor op costs host
    microseconds). Each view starts on a 16-byte boundary, as a fresh tensor would (kernels are
    specialised on it)."""
    groups = nb * nh
    n = groups * tk
    sizes = dict(num_allowed=(nb, nh, 2),  # int64 as two int32 words, viewed back by the caller
                 n_true=(n,), words=(n, block_q, block_k // 32), full_ptr=(groups + 1,), part_ptr=(groups + 1,),
                 full_idx=(n,), part_idx=(n,), t_full_ptr=(n + 1,), t_part_ptr=(n + 1,), t_full_idx=(n,),
                 t_part_idx=(n,), t_part_slot=(n,), q_order=(groups, 1), k_order=(groups, tk), part_pos=(n,))
    layout, offset = [], 0
    for name, shape in sizes.items():
        strides = tuple(math.prod(shape[d + 1:]) for d in range(len(shape)))
        layout.append((name, shape, strides, offset))
        offset += -(-math.prod(shape) // 4) * 4
    return offset, tuple(layout)
