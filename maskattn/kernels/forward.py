"""Forward kernel: flash attention (online softmax, fp32 accumulation) over a BlockMap.

One program = one (batch, query head) x one ``BLOCK_M`` slice of a query tile. It visits
only that tile's non-empty key tiles: full ones without any mask arithmetic, partial ones
through their bitmap. Programs are numbered heaviest row first (``q_order``) so that long
rows (e.g. Longformer global rows) start early instead of trailing at the end.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..block_map import BlockMap
from .common import load_kv, scores_log2, tile_bits
from .config import dot_precision, forward_config, launch, next_pow2


@triton.jit
def _softmax_step(acc, m_i, l_i, q, k, v, allowed, scale, softcap,
                  MASKED: tl.constexpr, HAS_SOFTCAP: tl.constexpr, PRECISION: tl.constexpr):
    qk = tl.dot(q, tl.trans(k), input_precision=PRECISION)
    s, _ = scores_log2(qk, scale, softcap, HAS_SOFTCAP)
    if MASKED:
        s = tl.where(allowed, s, float("-inf"))
    m_new = tl.maximum(m_i, tl.max(s, 1))
    if MASKED:  # a row with nothing allowed so far keeps m = -inf; subtract 0 instead of NaN
        m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
    else:
        m_use = m_new
    p = tl.math.exp2(s - m_use[:, None])
    alpha = tl.math.exp2(m_i - m_use)
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = tl.dot(p.to(v.dtype), v, acc * alpha[:, None], input_precision=PRECISION)
    return acc, m_new, l_i


@triton.jit
def _attn_fwd(
    Q, K, V, O, LSE,
    FULL_PTR, FULL_IDX, PART_PTR, PART_IDX, BITMAPS, Q_ORDER,
    sqb, sqh, sqm, sqd, skb, skh, skn, skd, svb, svh, svn, svd, sob, soh, som, sod,
    H, GROUP, Lq, Lk, D, map_sb, map_sh, n_qt, scale, softcap,
    TILE_Q: tl.constexpr, TILE_K: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr, EVEN_D: tl.constexpr, HAS_SOFTCAP: tl.constexpr, PRECISION: tl.constexpr,
):
    SUB_M: tl.constexpr = TILE_Q // BLOCK_M
    pid_bh = tl.program_id(0)
    pid_r = tl.program_id(1)
    b = pid_bh // H
    h = pid_bh % H
    g = b * map_sb + h * map_sh  # which (batch, head) map this program reads
    qt = tl.load(Q_ORDER + g * n_qt + pid_r // SUB_M)
    row0 = (pid_r % SUB_M) * BLOCK_M  # first row inside the tile
    row = g * n_qt + qt

    offs_m = qt * TILE_Q + row0 + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    d_ok = offs_d < D
    m_ok = offs_m < Lq
    q = tl.load(Q + b.to(tl.int64) * sqb + h.to(tl.int64) * sqh + offs_m[:, None].to(tl.int64) * sqm
                + offs_d[None, :] * sqd, mask=m_ok[:, None] & d_ok[None, :], other=0.0)
    kvh = (h // GROUP).to(tl.int64)
    k_base = K + b.to(tl.int64) * skb + kvh * skh + offs_d[None, :] * skd
    v_base = V + b.to(tl.int64) * svb + kvh * svh + offs_d[None, :] * svd

    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)

    # Loops run over (tile, sub-block) pairs flattened into one range: one dot pair per
    # iteration, which Triton's software pipeliner handles well.
    SUB_N: tl.constexpr = TILE_K // BLOCK_N
    # full tiles: entirely inside [0, Lk), every pair allowed -> no masks at all
    for j in range(tl.load(FULL_PTR + row) * SUB_N, tl.load(FULL_PTR + row + 1) * SUB_N):
        kt = tl.load(FULL_IDX + j // SUB_N)
        offs_k = (kt * TILE_K + (j % SUB_N) * BLOCK_N + offs_n).to(tl.int64)
        k, v = load_kv(k_base, v_base, offs_k, skn, svn, d_ok[None, :], EVEN_D)
        acc, m_i, l_i = _softmax_step(acc, m_i, l_i, q, k, v, None, scale, softcap,
                                      False, HAS_SOFTCAP, PRECISION)

    # partial tiles: bitmap bits decide; keys past Lk (ragged last tile) are not loaded
    for j in range(tl.load(PART_PTR + row) * SUB_N, tl.load(PART_PTR + row + 1) * SUB_N):
        idx = j // SUB_N
        col0 = (j % SUB_N) * BLOCK_N
        kt = tl.load(PART_IDX + idx)
        allowed = tile_bits(BITMAPS, idx, row0, col0, BLOCK_M, BLOCK_N, TILE_Q, TILE_K)
        offs_k = (kt * TILE_K + col0 + offs_n).to(tl.int64)
        k, v = load_kv(k_base, v_base, offs_k, skn, svn, (offs_k < Lk)[:, None] & d_ok[None, :], False)
        acc, m_i, l_i = _softmax_step(acc, m_i, l_i, q, k, v, allowed, scale, softcap,
                                      True, HAS_SOFTCAP, PRECISION)

    # fully masked rows: l = 0 -> out 0, lse -inf (never NaN)
    l_safe = tl.where(l_i == 0.0, 1.0, l_i)
    out = acc / l_safe[:, None]
    lse = tl.where(l_i == 0.0, float("-inf"), (m_i + tl.math.log2(l_safe)) * 0.6931471805599453)
    tl.store(O + b.to(tl.int64) * sob + h.to(tl.int64) * soh + offs_m[:, None].to(tl.int64) * som
             + offs_d[None, :] * sod, out.to(O.dtype.element_ty), mask=m_ok[:, None] & d_ok[None, :])
    tl.store(LSE + pid_bh.to(tl.int64) * Lq + offs_m, lse, mask=m_ok)


def map_strides(bm: BlockMap) -> tuple[int, int]:
    """Map-group strides for batch and head: group = b * sb + h * sh (0 where shared)."""
    return (bm.heads if bm.batch > 1 else 0), (1 if bm.heads > 1 else 0)


def attention_forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bm: BlockMap, scale: float,
                      softcap: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """q: (B, Hq, Lq, D), k/v: (B, Hkv, Lk, D), any strides -> out (B, Hq, Lq, D) in q's dtype,
    lse (B, Hq, Lq) fp32 natural log."""
    b, hq, lq, d = q.shape
    out = torch.empty((b, hq, lq, d), dtype=q.dtype, device=q.device)
    lse = torch.empty((b, hq, lq), dtype=torch.float32, device=q.device)
    cfg = forward_config(bm.block_q, bm.block_k, d, q.dtype)
    sb, sh = map_strides(bm)
    block_d = next_pow2(max(d, 16))
    args = (q, k, v, out, lse,
            bm.full_ptr, bm.full_idx, bm.part_ptr, bm.part_idx, bm.bitmaps, bm.q_order,
            *q.stride(), *k.stride(), *v.stride(), *out.stride(),
            hq, hq // k.shape[1], lq, k.shape[2], d, sb, sh, bm.n_q_tiles, scale, softcap if softcap else 1.0)
    constexprs = dict(TILE_Q=bm.block_q, TILE_K=bm.block_k, BLOCK_D=block_d, EVEN_D=block_d == d,
                      HAS_SOFTCAP=softcap is not None, PRECISION=dot_precision(q.dtype))
    launch(_attn_fwd, lambda c: (b * hq, bm.n_q_tiles * (bm.block_q // c["BLOCK_M"])), args, constexprs, cfg,
           ("fwd", bm.block_q, bm.block_k, d, q.dtype, q.device))
    return out, lse
