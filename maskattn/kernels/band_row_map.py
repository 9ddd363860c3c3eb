"""A single-query-tile ``BlockMap`` of a band mask (causal, sliding window, full), written by
one Triton launch straight from the band's parameters.

Every decode step of a causal or sliding-window model compiles a new map (the key count
grows by one). The generic single-row build (``compile_row.py`` + ``row_map.py``) evaluates
the mask on every key, counts and packs the bits, classifies, then gathers the partial
tiles' words: some ten host operations and three launches, several hundred microseconds of
host time per step. A band needs none of that: query row ``r`` (position ``i = q_offset + r``)
may attend keys ``c`` with ``-left <= c - i <= right`` and ``0 <= c < Lk``, one interval of
keys per row, so every field follows from a few integers:

* a key tile's pairs have ``c - i`` covering one interval ``[dmin, dmax]`` (every integer in
  it occurs), so the tile has some allowed pair iff that interval meets ``[-left, right]``,
  and all its pairs are allowed iff it lies inside (and the tile sticks out nowhere);
* each program (one per key tile) classifies all tiles this way, so it knows the ranks of
  its own tile in the lists without waiting for any other program;
* a row's allowed keys ``[klo, khi]`` give its 32-bit words by two shifts.

The fields equal those of the generic build (``compile_row._row_lists_torch``) bit for bit,
unused entries past the lists' ends included (tests/kernels/test_band_row_map.py).
Positions stay in int64: ``|q_offset| < 2**62`` and windows are capped at ``3 * 2**61``, so
the band's bounds are clamped to the key range before any position is added to them.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .config import next_pow2
from .relaunch import launch_direct
from .row_map import _layout

_WARPS = dict(num_warps=4)
_MAX_CHUNK = 1024  # key tiles per step of the rank scan


@triton.jit
def _tile_classes(tiles, q0, left, right, Lq, Lk, HAS_LEFT: tl.constexpr, HAS_RIGHT: tl.constexpr,
                  BLOCK_Q: tl.constexpr, BLOCK_K: tl.constexpr):
    """(FULL, PARTIAL) flags of key tiles ``tiles`` (any int vector of tiles inside the grid)."""
    c0 = tiles.to(tl.int64) * BLOCK_K
    dmin = c0 - q0 - (Lq - 1)  # c - i over the tile's real rows and keys
    dmax = tl.minimum(c0 + BLOCK_K, Lk) - 1 - q0
    some = dmax >= dmin
    every = (c0 + BLOCK_K <= Lk) & (c0 * 0 + Lq == BLOCK_Q)  # sticking out: never FULL (a tensor compare: the interpreter needs one)
    if HAS_LEFT:
        some = some & (dmax >= -left)
        every = every & (dmin >= -left)
    if HAS_RIGHT:
        some = some & (dmin <= right)
        every = every & (dmax <= right)
    if HAS_LEFT and HAS_RIGHT:
        some = some & (c0 * 0 - left <= right)  # an empty band (left + right < 0) allows nothing
    return some & every, some & ~every


@triton.jit
def _row_keys(q0, left, right, Lq, Lk, HAS_LEFT: tl.constexpr, HAS_RIGHT: tl.constexpr, BLOCK_Q: tl.constexpr):
    """Allowed keys ``[klo, khi]`` of each tile row (empty where ``khi < klo``; rows past Lq empty),
    as int64 in [-1, Lk]: the band is clamped to the keys in c - i terms before i is added."""
    r = tl.arange(0, BLOCK_Q)
    i = q0 + r  # int64 positions
    dlo = -i  # c >= 0
    dhi = Lk - 1 - i  # c < Lk
    if HAS_LEFT:
        dlo = tl.maximum(dlo, -left)
    if HAS_RIGHT:
        dhi = tl.minimum(dhi, right)
    dlo = tl.minimum(dlo, Lk - i)
    dhi = tl.maximum(dhi, -i - 1)
    khi = tl.where(r < Lq, i + dhi, -1)
    return i + dlo, khi


@triton.jit
def _tile_words(klo, khi, tile, BLOCK_Q: tl.constexpr, BLOCK_K: tl.constexpr):
    """(BLOCK_Q, BLOCK_K // 32) int32 words of key tile ``tile``: bit ``c % 32`` of word ``c // 32``."""
    N_WORDS: tl.constexpr = BLOCK_K // 32
    base = tile.to(tl.int64) * BLOCK_K + tl.arange(0, N_WORDS)[None, :] * 32
    lo = tl.minimum(tl.maximum(klo[:, None] - base, 0), 32)
    hi = tl.minimum(tl.maximum(khi[:, None] + 1 - base, 0), 32)
    one = tl.full([1, 1], 1, tl.int64)
    bits = tl.where(hi > lo, (one << hi) - (one << lo), 0)  # bits [lo, hi); bit 31 wraps to the sign
    return bits.to(tl.int32)


@triton.jit(do_not_specialize=["q_offset", "left", "right"])
def _band_row_map(FULL_PTR, PART_PTR, FULL_IDX, PART_IDX, BITMAPS, T_FULL_PTR, T_PART_PTR, T_FULL_IDX, T_PART_IDX,
                  T_PART_SLOT, Q_ORDER, K_ORDER, NUM_ALLOWED, q_offset, left, right, Lq, Lk, n_k_tiles,
                  HAS_LEFT: tl.constexpr, HAS_RIGHT: tl.constexpr, BLOCK_Q: tl.constexpr, BLOCK_K: tl.constexpr,
                  CHUNK: tl.constexpr):
    """Program ``t``: every list entry of key tile ``t`` of the band's single map row."""
    t = tl.program_id(0)
    q0 = q_offset + tl.zeros([1], tl.int64)  # int64 before any arithmetic
    # ranks: FULL / PARTIAL tiles before t and in all
    full_before = 0
    part_before = 0
    full_all = 0
    part_all = 0
    for start in range(0, n_k_tiles, CHUNK):
        tiles = start + tl.arange(0, CHUNK)
        full, part = _tile_classes(tiles, q0, left, right, Lq, Lk, HAS_LEFT, HAS_RIGHT, BLOCK_Q, BLOCK_K)
        ok = tiles < n_k_tiles
        full = (full & ok).to(tl.int32)
        part = (part & ok).to(tl.int32)
        full_before += tl.sum(tl.where(tiles < t, full, 0), 0)
        part_before += tl.sum(tl.where(tiles < t, part, 0), 0)
        full_all += tl.sum(full, 0)
        part_all += tl.sum(part, 0)
    mine = t + tl.zeros([1], tl.int32)
    is_full, is_part = _tile_classes(mine, q0, left, right, Lq, Lk, HAS_LEFT, HAS_RIGHT, BLOCK_Q, BLOCK_K)
    klo, khi = _row_keys(q0, left, right, Lq, Lk, HAS_LEFT, HAS_RIGHT, BLOCK_Q)
    N_WORDS: tl.constexpr = BLOCK_K // 32
    w_off = tl.arange(0, BLOCK_Q)[:, None] * N_WORDS + tl.arange(0, N_WORDS)[None, :]
    TILE_WORDS: tl.constexpr = BLOCK_Q * N_WORDS
    zero = tl.zeros([1], tl.int32)
    tl.store(FULL_IDX + full_before + zero, mine, mask=is_full)
    tl.store(PART_IDX + part_before + zero, mine, mask=is_part)
    if tl.sum(is_part.to(tl.int32), 0) > 0:
        tl.store(BITMAPS + part_before.to(tl.int64) * TILE_WORDS + w_off, _tile_words(klo, khi, t, BLOCK_Q, BLOCK_K))
    # column view: one query tile, so a column holds at most one tile
    tl.store(T_FULL_PTR + t + 1 + zero, full_before + is_full.to(tl.int32))
    tl.store(T_PART_PTR + t + 1 + zero, part_before + is_part.to(tl.int32))
    tl.store(T_FULL_IDX + t + zero, zero)
    tl.store(T_PART_IDX + t + zero, zero)
    tl.store(T_PART_SLOT + t + zero, mine)  # the columns in order are the partial tiles in order
    # work order, heaviest first: PARTIAL tiles, then FULL, then EMPTY, each in key order
    empty_before = t - full_before - part_before
    pos = tl.where(is_part, part_before, tl.where(is_full, part_all + full_before, part_all + full_all + empty_before))
    tl.store(K_ORDER + pos, mine)
    # entries past the lists' ends, as the generic build leaves them: zeros, and tile 0's words
    tl.store(FULL_IDX + t + zero, zero, mask=mine >= full_all)
    tl.store(PART_IDX + t + zero, zero, mask=mine >= part_all)
    if t >= part_all:
        tl.store(BITMAPS + t.to(tl.int64) * TILE_WORDS + w_off, _tile_words(klo, khi, t * 0, BLOCK_Q, BLOCK_K))
    if t == 0:
        tl.store(FULL_PTR + tl.arange(0, 2), tl.where(tl.arange(0, 2) == 0, 0, full_all))
        tl.store(PART_PTR + tl.arange(0, 2), tl.where(tl.arange(0, 2) == 0, 0, part_all))
        tl.store(T_FULL_PTR + zero, zero)
        tl.store(T_PART_PTR + zero, zero)
        tl.store(Q_ORDER + zero, zero)
        tl.store(NUM_ALLOWED + zero, tl.sum(tl.maximum(khi - klo + 1, 0), 0) + zero.to(tl.int64))


def build_band_row_lists(left: int | None, right: int | None, q_offset: int, q_len: int, kv_len: int,
                         block_q: int, block_k: int, device: torch.device) -> dict:
    """The ``BlockMap`` fields of the band ``q_offset + r - left <= c <= q_offset + r + right``
    (None: unbounded) over ``q_len <= block_q`` queries and ``kv_len`` keys: one map row
    (batch 1, heads 1), lists padded to ``Tk`` entries as ``row_map.build_row_lists`` pads them."""
    tk = -(-kv_len // block_k)
    size, layout = _layout(1, 1, tk, block_q, block_k)
    buf = torch.empty(size, dtype=torch.int32, device=device)
    f = {name: buf.as_strided(shape, stride, offset) for name, shape, stride, offset in layout}
    f["num_allowed"] = f["num_allowed"].view(torch.int64).view(1, 1)
    f["bitmaps"] = f.pop("words")  # the partial tiles' words, written in list order
    del f["n_true"], f["part_pos"]
    launch_direct(_band_row_map, (tk,), (f["full_ptr"], f["part_ptr"], f["full_idx"], f["part_idx"], f["bitmaps"],
                                         f["t_full_ptr"], f["t_part_ptr"], f["t_full_idx"], f["t_part_idx"],
                                         f["t_part_slot"], f["q_order"], f["k_order"], f["num_allowed"],
                                         q_offset, 0 if left is None else left, 0 if right is None else right,
                                         q_len, kv_len, tk),
                  dict(HAS_LEFT=left is not None, HAS_RIGHT=right is not None, BLOCK_Q=block_q, BLOCK_K=block_k,
                       CHUNK=min(_MAX_CHUNK, next_pow2(max(tk, 16)))), _WARPS)
    return f
