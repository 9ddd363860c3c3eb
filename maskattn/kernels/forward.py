"""Forward kernel: flash attention (online softmax, fp32 accumulation) over a BlockMap.

A work item is one (batch, query head) x one ``BLOCK_M`` slice of a query tile. It visits
only that tile's non-empty key tiles: full ones without any mask arithmetic, partial ones
through their bitmap. Q, K and V arrive through tensor descriptors (the Hopper copy
engine, TMA; zero-filled past the ends, so ragged tiles need no bounds masks), fed with the
key-tile numbers the map lists. Programs are numbered heaviest first across all heads
(``q_order``: rank-major, then (batch, head)), so long rows start in the first wave.
(Measured on the H100 and dropped: a persistent grid, 5% slower; Triton's warp
specialization of the key loops, no change. benchmarks/results/NOTES.md.) On sm_90, fp16/bf16
forwards with head dims up to 256 run the warp-specialized Gluon kernel of ``flash_fwd_sm90``
instead (``flash_fwd_sm90.supported``); this kernel serves everything else and the interpreter.

Masked-out keys never reach a row: a masked score is set to -inf with ``where`` (so a NaN
key is harmless), and partial tiles read V with non-finite entries as 0 (a NaN value in a
padded or unwritten cache slot would otherwise leak through 0 * NaN in P @ V into rows that
may not see it; rows that may see it already get NaN through their scores or sum).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..block_map import BlockMap
from . import flash_fwd_sm90, plans
from .common import finite_or_zero, row_desc, softmax_step, tile_bits
from .config import dot_precision, forward_config, is_row_bound, launch, next_pow2, programs_per_sm
from .tma import ensure_allocator, padded_dim, tma_operand


@triton.jit
def _attn_fwd(
    Q, K, V, O, LSE,
    FULL_PTR, FULL_IDX, PART_PTR, PART_IDX, BITMAPS, Q_ORDER,
    sqb, sqh, sqm, skb, skh, skn, svb, svh, svn, sob, soh, som,
    H, GROUP, Lq, Lk, D, D_TMA, map_sb, map_sh, n_qt, n_bh, scale, softcap,
    TILE_Q: tl.constexpr, TILE_K: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr, HAS_SOFTCAP: tl.constexpr, PRECISION: tl.constexpr, NEG_SCALE: tl.constexpr,
):
    SUB_M: tl.constexpr = TILE_Q // BLOCK_M
    SUB_N: tl.constexpr = TILE_K // BLOCK_N
    offs_d = tl.arange(0, BLOCK_D)
    item = tl.program_id(0)
    bh = item % n_bh  # rank-major numbering: every head's heaviest rows come first
    rank = item // n_bh
    b = bh // H
    h = bh % H
    g = b * map_sb + h * map_sh  # which (batch, head) map this item reads
    qt = tl.load(Q_ORDER + g * n_qt + rank // SUB_M)
    m0 = qt * TILE_Q + (rank % SUB_M) * BLOCK_M  # first query row
    row = g * n_qt + qt
    kvh = h // GROUP
    q = row_desc(Q, b, h, sqb, sqh, sqm, Lq, D_TMA, BLOCK_M, BLOCK_D).load([m0, 0])
    k_desc = row_desc(K, b, kvh, skb, skh, skn, Lk, D_TMA, BLOCK_N, BLOCK_D)
    v_desc = row_desc(V, b, kvh, svb, svh, svn, Lk, D_TMA, BLOCK_N, BLOCK_D)

    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)

    # (tile, sub-block) pairs flattened into one loop: one dot pair per iteration.
    # Full tiles: entirely inside [0, Lk), every pair allowed -> no masks at all.
    for j in range(tl.load(FULL_PTR + row) * SUB_N, tl.load(FULL_PTR + row + 1) * SUB_N):
        n0 = tl.load(FULL_IDX + j // SUB_N) * TILE_K + (j % SUB_N) * BLOCK_N
        acc, m_i, l_i = softmax_step(acc, m_i, l_i, q, k_desc.load([n0, 0]), v_desc.load([n0, 0]), None,
                                      scale, softcap, False, HAS_SOFTCAP, PRECISION, NEG_SCALE)
    # Partial tiles: bitmap bits decide; keys past Lk read as zeros and have bit 0.
    for j in range(tl.load(PART_PTR + row) * SUB_N, tl.load(PART_PTR + row + 1) * SUB_N):
        idx = j // SUB_N
        c0 = (j % SUB_N) * BLOCK_N
        n0 = tl.load(PART_IDX + idx) * TILE_K + c0
        allowed = tile_bits(BITMAPS, idx, m0 - qt * TILE_Q, c0, BLOCK_M, BLOCK_N, TILE_Q, TILE_K)
        v = finite_or_zero(v_desc.load([n0, 0]))
        acc, m_i, l_i = softmax_step(acc, m_i, l_i, q, k_desc.load([n0, 0]), v, allowed,
                                      scale, softcap, True, HAS_SOFTCAP, PRECISION, NEG_SCALE)

    # fully masked rows: l = 0 -> out 0, lse -inf (never NaN)
    l_safe = tl.where(l_i == 0.0, 1.0, l_i)
    out = acc / l_safe[:, None]
    lse = tl.where(l_i == 0.0, float("-inf"), (m_i + tl.math.log2(l_safe)) * 0.6931471805599453)
    offs_m = m0 + tl.arange(0, BLOCK_M)
    m_ok = offs_m < Lq
    tl.store(O + b.to(tl.int64) * sob + h.to(tl.int64) * soh + offs_m[:, None].to(tl.int64) * som
             + offs_d[None, :], out.to(O.dtype.element_ty), mask=m_ok[:, None] & (offs_d[None, :] < D))
    tl.store(LSE + bh.to(tl.int64) * Lq + offs_m, lse, mask=m_ok)


def map_strides(bm: BlockMap) -> tuple[int, int]:
    """Map-group strides for batch and head: group = b * sb + h * sh (0 where shared)."""
    return (bm.heads if bm.batch > 1 else 0), (1 if bm.heads > 1 else 0)


_PLANS = "_forward_plans"  # where ForwardPlans live on a map (``plans.py``)


def _plan_key(q, k, v, scale, softcap):
    """The key of a forward call's plan (``plans.py``), or None where calls are not replayed."""
    if not plans.replayable(q):
        return None
    return (plans.layouts(q, k, v), q.device, scale, softcap, flash_fwd_sm90.ENABLED,
            flash_fwd_sm90.STATIC_MAX_MEAN_TILES)


def attention_forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bm: BlockMap, scale: float,
                      softcap: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """q: (B, Hq, Lq, D), k/v: (B, Hkv, Lk, D), any strides -> out (B, Hq, Lq, D) in q's dtype,
    lse (B, Hq, Lq) fp32 natural log."""
    from .decode import decode_forward, use_decode  # decode builds on this module
    if use_decode(bm, q.shape[2]):
        return decode_forward(q, k, v, bm, scale, softcap)
    key = _plan_key(q, k, v, scale, softcap)
    plan = plans.recall(bm, _PLANS, key)
    if plan is not None:
        return plan(q, k, v)
    b, hq, lq, d = q.shape
    out = torch.empty((b, hq, lq, d), dtype=q.dtype, device=q.device)
    lse = torch.empty((b, hq, lq), dtype=torch.float32, device=q.device)
    ensure_allocator()
    d_tma = padded_dim(d, q.dtype)
    given = (q, k, v)
    q, k, v = (tma_operand(t, d_tma) for t in given)
    sb, sh = map_strides(bm)
    if flash_fwd_sm90.supported(q, bm, d_tma, softcap):
        launched, counter_slot = flash_fwd_sm90.sm90_forward(q, k, v, out, lse, bm, scale, d, d_tma, sb, sh)
        # inputs used as given (no aligned copies): later calls like this one replay the launch
        if key is not None and all(a is b for a, b in zip((q, k, v), given)):
            plans.remember(bm, _PLANS, key, plans.ForwardPlan(out, lse, launched, flash_fwd_sm90._attn_fwd_sm90,
                                                              counter_slot))
        return out, lse
    args = (q, k, v, out, lse, bm.full_ptr, bm.full_idx, bm.part_ptr, bm.part_idx, bm.bitmaps, bm.q_order,
            *q.stride()[:3], *k.stride()[:3], *v.stride()[:3], *out.stride()[:3],
            hq, hq // k.shape[1], lq, k.shape[2], d, d_tma, sb, sh, bm.n_q_tiles, b * hq,
            scale, softcap if softcap else 1.0)
    constexprs = dict(TILE_Q=bm.block_q, TILE_K=bm.block_k, BLOCK_D=next_pow2(max(d_tma, 16)),
                      HAS_SOFTCAP=softcap is not None, PRECISION=dot_precision(q.dtype), NEG_SCALE=scale < 0)
    cfg = forward_config(bm.block_q, bm.block_k, d, q.dtype)
    if is_row_bound(bm.max_row_tiles, bm.nonempty_tiles, b * hq // (bm.batch * bm.heads), q.device,
                    programs_per_sm(cfg)):
        cfg = forward_config(bm.block_q, bm.block_k, d, q.dtype, row_bound=True)
    launch(_attn_fwd, lambda c: (b * hq * bm.n_q_tiles * (bm.block_q // c["BLOCK_M"]),), args, constexprs, cfg,
           ("fwd", bm.block_q, bm.block_k, d, q.dtype, q.device))
    return out, lse
