"""Backward kernels over a BlockMap (FlashAttention-2 style, no atomics: deterministic).

* ``_attn_bwd_dkdv``: one program = one (batch, KV head) x one ``BLOCK_N`` slice of a key
  tile. It walks the key tile's non-empty query tiles (the map's column view) for every
  query head that shares this KV head (GQA summed in registers), accumulating dK and dV.
* ``_attn_bwd_dq``: one program = one (batch, query head) x one ``BLOCK_M`` slice of a
  query tile, walking the row view like the forward pass, accumulating dQ.
Both recompute P = exp(S - lse); ``delta = rowsum(dO * O) - dlse`` comes from a small
preprocessing kernel. Extra memory: lse and delta, 8 bytes per (query head, token).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..block_map import BlockMap
from .common import load_kv, scores_log2, tile_bits
from .config import dkdv_config, dot_precision, dq_config, launch, next_pow2
from .forward import map_strides


@triton.jit
def _dscores(q, k, v, do, lse2, delta, allowed, scale, softcap,
             MASKED: tl.constexpr, HAS_SOFTCAP: tl.constexpr, PRECISION: tl.constexpr):
    """(BLOCK_M, BLOCK_N) dS, the gradient w.r.t. the raw q.k product (before ``scale``), for dQ."""
    qk = tl.dot(q, tl.trans(k), input_precision=PRECISION)
    s, t = scores_log2(qk, scale, softcap, HAS_SOFTCAP)
    p = tl.math.exp2(s - lse2[:, None])
    if MASKED:
        p = tl.where(allowed, p, 0.0)
    dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)
    ds = p * (dp - delta[:, None])
    if HAS_SOFTCAP:
        ds = ds * (1.0 - t * t)
    return ds


@triton.jit
def _dkdv_step(dk, dv, q, k, v, do, lse2, delta, allowed, scale, softcap,
               MASKED: tl.constexpr, HAS_SOFTCAP: tl.constexpr, PRECISION: tl.constexpr):
    """Accumulate one (BLOCK_N keys x BLOCK_M queries) block into dK, dV (BLOCK_N, BLOCK_D).

    Scores are computed with keys on rows, S^T = K Q^T (as in Triton's fused-attention
    tutorial), so P^T and dS^T feed the dV and dK products without register transposes
    (3% faster on the H100 than S = Q K^T plus transposes: benchmarks/results/layout_sweep.log).
    ``allowed``: (BLOCK_N, BLOCK_M), keys on rows too."""
    qk = tl.dot(k, tl.trans(q), input_precision=PRECISION)
    s, t = scores_log2(qk, scale, softcap, HAS_SOFTCAP)
    p = tl.math.exp2(s - lse2[None, :])
    if MASKED:
        p = tl.where(allowed, p, 0.0)
    dv += tl.dot(p.to(do.dtype), do, input_precision=PRECISION)
    ds = p * (tl.dot(v, tl.trans(do), input_precision=PRECISION) - delta[None, :])
    if HAS_SOFTCAP:
        ds = ds * (1.0 - t * t)
    dk += tl.dot(ds.to(q.dtype), q, input_precision=PRECISION)
    return dk, dv


@triton.jit
def _load_rows(Q, DO, LSE, DELTA, q_off, do_off, stat_off, offs_m, offs_d, sqm, sqd, sdm, sdd, Lq, D,
               CHECK_M: tl.constexpr, EVEN_D: tl.constexpr):
    """Query-side operands of a row block: q, dO (BLOCK_M, BLOCK_D), lse in log2 units and delta."""
    mask = offs_d[None, :] < D
    if CHECK_M:
        mask = mask & (offs_m[:, None] < Lq)
    rows = offs_m[:, None].to(tl.int64)
    if EVEN_D and not CHECK_M:
        q = tl.load(Q + q_off + rows * sqm + offs_d[None, :] * sqd)
        do = tl.load(DO + do_off + rows * sdm + offs_d[None, :] * sdd)
    else:
        q = tl.load(Q + q_off + rows * sqm + offs_d[None, :] * sqd, mask=mask, other=0.0)
        do = tl.load(DO + do_off + rows * sdm + offs_d[None, :] * sdd, mask=mask, other=0.0)
    if CHECK_M:
        lse = tl.load(LSE + stat_off + offs_m, mask=offs_m < Lq, other=0.0)
        delta = tl.load(DELTA + stat_off + offs_m, mask=offs_m < Lq, other=0.0)
    else:
        lse = tl.load(LSE + stat_off + offs_m)
        delta = tl.load(DELTA + stat_off + offs_m)
    # fully masked rows have lse = -inf: use +inf so that P = exp(S - lse) = 0 there
    lse2 = tl.where(lse == float("-inf"), float("inf"), lse * 1.4426950408889634)
    return q, do, lse2, delta


@triton.jit
def _bwd_delta(O, DO, DLSE, DELTA, sob, soh, som, sod, sdb, sdh, sdm, sdd, H, Lq, D,
               HAS_DLSE: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr):
    """delta = rowsum(dO * O) - dlse, (B*H, Lq) fp32: the softmax-backward row term."""
    pid_bh = tl.program_id(0)
    offs_m = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    b = (pid_bh // H).to(tl.int64)
    h = (pid_bh % H).to(tl.int64)
    mask = (offs_m[:, None] < Lq) & (offs_d[None, :] < D)
    rows = offs_m[:, None].to(tl.int64)
    o = tl.load(O + b * sob + h * soh + rows * som + offs_d[None, :] * sod, mask=mask, other=0.0)
    do = tl.load(DO + b * sdb + h * sdh + rows * sdm + offs_d[None, :] * sdd, mask=mask, other=0.0)
    delta = tl.sum(o.to(tl.float32) * do.to(tl.float32), 1)
    if HAS_DLSE:
        delta -= tl.load(DLSE + pid_bh.to(tl.int64) * Lq + offs_m, mask=offs_m < Lq, other=0.0)
    tl.store(DELTA + pid_bh.to(tl.int64) * Lq + offs_m, delta, mask=offs_m < Lq)


@triton.jit
def _attn_bwd_dkdv(
    Q, K, V, DO, LSE, DELTA, DK, DV,
    T_FULL_PTR, T_FULL_IDX, T_PART_PTR, T_PART_IDX, T_PART_SLOT, BITMAPS, K_ORDER,
    sqb, sqh, sqm, sqd, skb, skh, skn, skd, svb, svh, svn, svd, sdb, sdh, sdm, sdd,
    sdkb, sdkh, sdkn, sdkd, sdvb, sdvh, sdvn, sdvd,
    Hq, Hkv, GROUP, Lq, Lk, D, map_sb, map_sh, n_kt, scale, softcap,
    TILE_Q: tl.constexpr, TILE_K: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr, EVEN_D: tl.constexpr, HAS_SOFTCAP: tl.constexpr, PRECISION: tl.constexpr,
):
    SUB_N: tl.constexpr = TILE_K // BLOCK_N
    SUB_M: tl.constexpr = TILE_Q // BLOCK_M
    pid_bh = tl.program_id(0)
    pid_r = tl.program_id(1)
    b = pid_bh // Hkv
    kvh = pid_bh % Hkv
    kt = tl.load(K_ORDER + (b * map_sb + kvh * GROUP * map_sh) * n_kt + pid_r // SUB_N)
    col0 = (pid_r % SUB_N) * BLOCK_N  # first column inside the tile

    offs_n = kt * TILE_K + col0 + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    kv_mask = (offs_n[:, None] < Lk) & (offs_d[None, :] < D)
    cols = offs_n[:, None].to(tl.int64)
    k = tl.load(K + b.to(tl.int64) * skb + kvh.to(tl.int64) * skh + cols * skn + offs_d[None, :] * skd,
                mask=kv_mask, other=0.0)
    v = tl.load(V + b.to(tl.int64) * svb + kvh.to(tl.int64) * svh + cols * svn + offs_d[None, :] * svd,
                mask=kv_mask, other=0.0)
    dk = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)

    for hg in range(GROUP):  # every query head reading this KV head: GQA sum in registers
        h = kvh * GROUP + hg
        col = (b * map_sb + h * map_sh) * n_kt + kt
        q_off = b.to(tl.int64) * sqb + h.to(tl.int64) * sqh
        do_off = b.to(tl.int64) * sdb + h.to(tl.int64) * sdh
        stat_off = (b * Hq + h).to(tl.int64) * Lq
        # (tile, sub-block) pairs flattened into one loop, as in the forward kernel
        for j in range(tl.load(T_FULL_PTR + col) * SUB_M, tl.load(T_FULL_PTR + col + 1) * SUB_M):
            qt = tl.load(T_FULL_IDX + j // SUB_M)
            offs_m = qt * TILE_Q + (j % SUB_M) * BLOCK_M + tl.arange(0, BLOCK_M)
            q, do, lse2, delta = _load_rows(Q, DO, LSE, DELTA, q_off, do_off, stat_off, offs_m, offs_d,
                                            sqm, sqd, sdm, sdd, Lq, D, False, EVEN_D)
            dk, dv = _dkdv_step(dk, dv, q, k, v, do, lse2, delta, None, scale, softcap,
                                False, HAS_SOFTCAP, PRECISION)
        for j in range(tl.load(T_PART_PTR + col) * SUB_M, tl.load(T_PART_PTR + col + 1) * SUB_M):
            qt = tl.load(T_PART_IDX + j // SUB_M)
            slot = tl.load(T_PART_SLOT + j // SUB_M)
            row0 = (j % SUB_M) * BLOCK_M
            offs_m = qt * TILE_Q + row0 + tl.arange(0, BLOCK_M)
            allowed = tile_bits(BITMAPS, slot, row0, col0, BLOCK_M, BLOCK_N, TILE_Q, TILE_K, TRANSPOSED=True)
            q, do, lse2, delta = _load_rows(Q, DO, LSE, DELTA, q_off, do_off, stat_off, offs_m, offs_d,
                                            sqm, sqd, sdm, sdd, Lq, D, True, EVEN_D)
            dk, dv = _dkdv_step(dk, dv, q, k, v, do, lse2, delta, allowed, scale, softcap,
                                True, HAS_SOFTCAP, PRECISION)

    dk = dk * scale
    tl.store(DK + b.to(tl.int64) * sdkb + kvh.to(tl.int64) * sdkh + cols * sdkn + offs_d[None, :] * sdkd,
             dk.to(DK.dtype.element_ty), mask=kv_mask)
    tl.store(DV + b.to(tl.int64) * sdvb + kvh.to(tl.int64) * sdvh + cols * sdvn + offs_d[None, :] * sdvd,
             dv.to(DV.dtype.element_ty), mask=kv_mask)


@triton.jit
def _attn_bwd_dq(
    Q, K, V, DO, LSE, DELTA, DQ,
    FULL_PTR, FULL_IDX, PART_PTR, PART_IDX, BITMAPS, Q_ORDER,
    sqb, sqh, sqm, sqd, skb, skh, skn, skd, svb, svh, svn, svd, sdb, sdh, sdm, sdd,
    sdqb, sdqh, sdqm, sdqd,
    Hq, GROUP, Lq, Lk, D, map_sb, map_sh, n_qt, scale, softcap,
    TILE_Q: tl.constexpr, TILE_K: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr, EVEN_D: tl.constexpr, HAS_SOFTCAP: tl.constexpr, PRECISION: tl.constexpr,
):
    SUB_M: tl.constexpr = TILE_Q // BLOCK_M
    pid_bh = tl.program_id(0)
    pid_r = tl.program_id(1)
    b = pid_bh // Hq
    h = pid_bh % Hq
    g = b * map_sb + h * map_sh
    qt = tl.load(Q_ORDER + g * n_qt + pid_r // SUB_M)
    row0 = (pid_r % SUB_M) * BLOCK_M
    row = g * n_qt + qt

    offs_m = qt * TILE_Q + row0 + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    d_ok = offs_d[None, :] < D
    q, do, lse2, delta = _load_rows(Q, DO, LSE, DELTA, b.to(tl.int64) * sqb + h.to(tl.int64) * sqh,
                                    b.to(tl.int64) * sdb + h.to(tl.int64) * sdh, pid_bh.to(tl.int64) * Lq,
                                    offs_m, offs_d, sqm, sqd, sdm, sdd, Lq, D, True, EVEN_D)
    kvh = (h // GROUP).to(tl.int64)
    k_base = K + b.to(tl.int64) * skb + kvh * skh + offs_d[None, :] * skd
    v_base = V + b.to(tl.int64) * svb + kvh * svh + offs_d[None, :] * svd
    dq = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)

    SUB_N: tl.constexpr = TILE_K // BLOCK_N
    for j in range(tl.load(FULL_PTR + row) * SUB_N, tl.load(FULL_PTR + row + 1) * SUB_N):
        kt = tl.load(FULL_IDX + j // SUB_N)
        offs_k = (kt * TILE_K + (j % SUB_N) * BLOCK_N + offs_n).to(tl.int64)
        k, v = load_kv(k_base, v_base, offs_k, skn, svn, d_ok, EVEN_D)
        ds = _dscores(q, k, v, do, lse2, delta, None, scale, softcap,
                      False, HAS_SOFTCAP, PRECISION)
        dq += tl.dot(ds.to(k.dtype), k, input_precision=PRECISION)
    for j in range(tl.load(PART_PTR + row) * SUB_N, tl.load(PART_PTR + row + 1) * SUB_N):
        idx = j // SUB_N
        col0 = (j % SUB_N) * BLOCK_N
        kt = tl.load(PART_IDX + idx)
        allowed = tile_bits(BITMAPS, idx, row0, col0, BLOCK_M, BLOCK_N, TILE_Q, TILE_K)
        offs_k = (kt * TILE_K + col0 + offs_n).to(tl.int64)
        k, v = load_kv(k_base, v_base, offs_k, skn, svn, (offs_k < Lk)[:, None] & d_ok, False)
        ds = _dscores(q, k, v, do, lse2, delta, allowed, scale, softcap,
                      True, HAS_SOFTCAP, PRECISION)
        dq += tl.dot(ds.to(k.dtype), k, input_precision=PRECISION)

    dq = dq * scale
    tl.store(DQ + b.to(tl.int64) * sdqb + h.to(tl.int64) * sdqh + offs_m[:, None].to(tl.int64) * sdqm
             + offs_d[None, :] * sdqd, dq.to(DQ.dtype.element_ty), mask=(offs_m[:, None] < Lq) & d_ok)


def attention_backward(do: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor,
                       lse: torch.Tensor, dlse: torch.Tensor | None, bm: BlockMap, scale: float,
                       softcap: float | None, deterministic: bool = True):
    """Gradients of ``attention_forward``. do/q/out: (B, Hq, Lq, D) any strides; k/v: (B, Hkv, Lk, D);
    lse/dlse: (B, Hq, Lq). Returns dq, dk, dv shaped and typed like q, k, v.
    ``deterministic``: False allows a faster, non-bitwise-reproducible path (atomics); these
    kernels use no atomics, so both values give the same, reproducible result."""
    b, hq, lq, d = q.shape
    hkv, lk = k.shape[1], k.shape[2]
    # d lse / d S = P, so a gradient on lse enters as dS = P * (dP - (delta - dlse))
    delta = torch.empty((b, hq, lq), dtype=torch.float32, device=q.device)
    dlse = dlse.float().contiguous() if dlse is not None else None
    _bwd_delta[(b * hq, triton.cdiv(lq, 64))](
        out, do, dlse if dlse is not None else delta, delta, *out.stride(), *do.stride(), hq, lq, d,
        HAS_DLSE=dlse is not None, BLOCK_M=64, BLOCK_D=next_pow2(max(d, 16)))
    lse = lse.contiguous()
    dq = torch.empty((b, hq, lq, d), dtype=q.dtype, device=q.device)
    dk = torch.empty((b, hkv, lk, d), dtype=k.dtype, device=k.device)
    dv = torch.empty((b, hkv, lk, d), dtype=v.dtype, device=v.device)
    sb, sh = map_strides(bm)
    block_d = next_pow2(max(d, 16))
    constexprs = dict(TILE_Q=bm.block_q, TILE_K=bm.block_k, BLOCK_D=block_d, EVEN_D=block_d == d,
                      HAS_SOFTCAP=softcap is not None, PRECISION=dot_precision(q.dtype))
    cap = softcap if softcap else 1.0
    key = (bm.block_q, bm.block_k, d, q.dtype, q.device)
    launch(_attn_bwd_dkdv, lambda c: (b * hkv, bm.n_k_tiles * (bm.block_k // c["BLOCK_N"])),
           (q, k, v, do, lse, delta, dk, dv,
            bm.t_full_ptr, bm.t_full_idx, bm.t_part_ptr, bm.t_part_idx, bm.t_part_slot, bm.bitmaps, bm.k_order,
            *q.stride(), *k.stride(), *v.stride(), *do.stride(), *dk.stride(), *dv.stride(),
            hq, hkv, hq // hkv, lq, lk, d, sb, sh, bm.n_k_tiles, scale, cap),
           constexprs, dkdv_config(bm.block_q, bm.block_k, d, q.dtype), ("dkdv",) + key)
    launch(_attn_bwd_dq, lambda c: (b * hq, bm.n_q_tiles * (bm.block_q // c["BLOCK_M"])),
           (q, k, v, do, lse, delta, dq,
            bm.full_ptr, bm.full_idx, bm.part_ptr, bm.part_idx, bm.bitmaps, bm.q_order,
            *q.stride(), *k.stride(), *v.stride(), *do.stride(), *dq.stride(),
            hq, hq // hkv, lq, lk, d, sb, sh, bm.n_q_tiles, scale, cap),
           constexprs, dq_config(bm.block_q, bm.block_k, d, q.dtype), ("dq",) + key)
    return dq, dk, dv
