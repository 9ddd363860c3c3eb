"""Backward over a BlockMap.

Default on Hopper (``flash_bwd_sm90``; head dims above 128: ``flash_bwd_sm90_wide``): one pass
per key tile computing dK, dV and dQ, dQ added into an fp32 accumulator with TMA reduce-adds (5
matrix products per tile pair; 7 in the wide kernel); not bitwise reproducible. Everywhere else,
and whenever determinism is asked for (``deterministic=True``: ``attention(...,
deterministic=True)`` or ``torch.use_deterministic_algorithms(True)``), two portable kernels
without atomics (FlashAttention-2 style), bitwise reproducible:

* ``_attn_bwd_dkdv``: one program = one (batch, KV head) x one ``BLOCK_N`` slice of a key
  tile. It walks the key tile's non-empty query tiles (the map's column view) for every
  query head that shares this KV head (GQA summed in registers), accumulating dK and dV.
* ``_attn_bwd_dq``: one program = one (batch, query head) x one ``BLOCK_M`` slice of a query
  tile, walking the row view like the forward pass, accumulating dQ.
Both recompute P = exp(S - lse); ``delta = rowsum(dO * O) - dlse`` comes from a small
preprocessing kernel. Extra memory: lse and delta, 8 bytes per (query head, token), a
cleaned copy of K for the dQ kernel, and on the one-pass path, instead of that copy, the fp32
dQ accumulator (4 bytes x head dim per (query head, token)).

An earlier one-pass kernel with atomic dQ written with ``tl.dot`` held dK, dV, K and V in
registers at once, spilled and was 10-20% slower than the two kernels on the H100; the Gluon
kernel splits that state over two warpgroups.

Masked pairs are dropped with ``where`` (never ``0 * x``) and dQ reads K cleaned of
non-finite entries (here one elementwise pass per call; the one-pass Hopper kernels clean K in
shared memory), so a NaN in a masked-out slot reaches no gradient of a row that may not see it.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..block_map import BlockMap
from . import flash_bwd_sm90, flash_bwd_sm90_wide, plans
from .common import finite_or_zero, row_desc, scores_log2, tile_bits
from .config import dkdv_config, dot_precision, dq_config, launch, next_pow2
from .forward import map_strides
from .tma import ensure_allocator, padded_dim, tma_operand


@triton.jit
def _load_rows(q_desc, do_desc, LSE, DELTA, stat_off, m0, Lq, BLOCK_M: tl.constexpr):
    """Query-side operands of a row block: q, dO (BLOCK_M, BLOCK_D), lse in log2 units and delta."""
    offs_m = m0 + tl.arange(0, BLOCK_M)
    lse = tl.load(LSE + stat_off + offs_m, mask=offs_m < Lq, other=float("-inf"))
    delta = tl.load(DELTA + stat_off + offs_m, mask=offs_m < Lq, other=0.0)
    # fully masked rows (and rows past Lq) have lse = -inf: use +inf so that P = exp(S - lse) = 0
    lse2 = tl.where(lse == float("-inf"), float("inf"), lse * 1.4426950408889634)
    return q_desc.load([m0, 0]), do_desc.load([m0, 0]), lse2, delta


@triton.jit
def _bwd_scores(q, k, v, do, lse2, delta, allowed, scale, softcap, KEYS_ON_ROWS: tl.constexpr,
                MASKED: tl.constexpr, HAS_SOFTCAP: tl.constexpr, PRECISION: tl.constexpr):
    """P and dS (dS w.r.t. the raw q.k product) of a (query block, key block) pair.

    ``KEYS_ON_ROWS`` (dK/dV): S^T = K Q^T, (BLOCK_N, BLOCK_M), as in Triton's fused-attention
    tutorial, so P^T and dS^T feed the dV and dK products without register transposes;
    otherwise (dQ) S = Q K^T, (BLOCK_M, BLOCK_N). ``allowed`` has the same orientation."""
    if KEYS_ON_ROWS:
        qk = tl.dot(k, tl.trans(q), input_precision=PRECISION)
        dp = tl.dot(v, tl.trans(do), input_precision=PRECISION)
        lse2, delta = lse2[None, :], delta[None, :]
    else:
        qk = tl.dot(q, tl.trans(k), input_precision=PRECISION)
        dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)
        lse2, delta = lse2[:, None], delta[:, None]
    s, t = scores_log2(qk, scale, softcap, HAS_SOFTCAP)
    p = tl.math.exp2(s - lse2)
    if MASKED:
        p = tl.where(allowed, p, 0.0)
    ds = p * (dp - delta)
    if HAS_SOFTCAP:
        ds = ds * (1.0 - t * t)
    if MASKED:  # dP of a masked pair may be NaN (a NaN value in the row): drop it, don't multiply
        ds = tl.where(allowed, ds, 0.0)
    return p, ds, qk


@triton.jit
def _bwd_prep(O, DO, DLSE, LSE, DELTA, LSE_OUT, DQ_ACC, K, K_CLEAN,
              sob, soh, som, sod, sdb, sdh, sdm, sdd, skb, skh, skn, sck_b, sck_h, sck_n,
              H, Hkv, Lq, Lk, D, D_K, D_ACC, stat_len, n_row_programs, n_key_blocks,
              HAS_DLSE: tl.constexpr, COPY_LSE: tl.constexpr, ZERO_DQ: tl.constexpr,
              BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr):
    """What the backward kernels read besides the inputs, in one launch (a 1-D grid):

    * programs ``[0, n_row_programs)``: one ``BLOCK_M``-row block of one (batch, query head):
      ``delta = rowsum(dO * O) - dlse`` into DELTA (B*H, stat_len) fp32, rows in
      ``[Lq, stat_len)`` zero; with ``COPY_LSE`` lse (B*H, Lq) into LSE_OUT (B*H, stat_len)
      likewise (the Hopper kernel's TMA loads want 64-row padded stats); with ``ZERO_DQ`` the
      block's rows of the fp32 dQ accumulator DQ_ACC (B*H, Lq, D_ACC) zeroed;
    * the others: one ``BLOCK_M``-row block of one (batch, KV head) of K (B, Hkv, Lk, D_K):
      K_CLEAN (contiguous) = K with non-finite entries zeroed (dQ reads it: see the module
      docstring)."""
    pid = tl.program_id(0)
    offs_d = tl.arange(0, BLOCK_D)
    if pid < n_row_programs:
        bh = pid // tl.cdiv(stat_len, BLOCK_M)
        offs_m = (pid % tl.cdiv(stat_len, BLOCK_M)) * BLOCK_M + tl.arange(0, BLOCK_M)
        b = (bh // H).to(tl.int64)
        h = (bh % H).to(tl.int64)
        mask = (offs_m[:, None] < Lq) & (offs_d[None, :] < D)
        rows = offs_m[:, None].to(tl.int64)
        o = tl.load(O + b * sob + h * soh + rows * som + offs_d[None, :] * sod, mask=mask, other=0.0)
        do = tl.load(DO + b * sdb + h * sdh + rows * sdm + offs_d[None, :] * sdd, mask=mask, other=0.0)
        delta = tl.sum(o.to(tl.float32) * do.to(tl.float32), 1)
        in_q = offs_m < Lq
        if HAS_DLSE:
            delta -= tl.load(DLSE + bh.to(tl.int64) * Lq + offs_m, mask=in_q, other=0.0)
        in_stats = offs_m < stat_len
        tl.store(DELTA + bh.to(tl.int64) * stat_len + offs_m, delta, mask=in_stats)
        if COPY_LSE:
            lse = tl.load(LSE + bh.to(tl.int64) * Lq + offs_m, mask=in_q, other=0.0)
            tl.store(LSE_OUT + bh.to(tl.int64) * stat_len + offs_m, lse, mask=in_stats)
        if ZERO_DQ:
            tl.store(DQ_ACC + (bh.to(tl.int64) * Lq + rows) * D_ACC + offs_d[None, :],
                     tl.zeros([BLOCK_M, BLOCK_D], tl.float32), mask=in_q[:, None] & (offs_d[None, :] < D_ACC))
    else:
        kb = pid - n_row_programs
        bh = kb // n_key_blocks
        offs_n = (kb % n_key_blocks) * BLOCK_M + tl.arange(0, BLOCK_M)
        b = (bh // Hkv).to(tl.int64)
        h = (bh % Hkv).to(tl.int64)
        mask = (offs_n[:, None] < Lk) & (offs_d[None, :] < D_K)
        rows = offs_n[:, None].to(tl.int64)
        k = tl.load(K + b * skb + h * skh + rows * skn + offs_d[None, :], mask=mask, other=0.0)
        tl.store(K_CLEAN + b * sck_b + h * sck_h + rows * sck_n + offs_d[None, :], finite_or_zero(k), mask=mask)


def prepare(out, do, lse, dlse, k, stat_len: int, dq_acc: torch.Tensor | None):
    """``_bwd_prep``'s launch. out/do: (B, Hq, Lq, >= D) any strides, lse/dlse: (B, Hq, Lq) fp32
    contiguous (dlse may be None), k: (B, Hkv, Lk, D_K) unit last stride; ``stat_len`` >= Lq
    (the padded row length of the stats); ``dq_acc``: (B, Hq, Lq, D_ACC) fp32 contiguous to zero
    for a Hopper backward, or None for the portable kernels (then lse is not copied: they read
    it as it is; and K is cleaned for their dQ kernel, where the Hopper kernels clean K in
    shared memory). Returns (delta (B, Hq, stat_len) fp32, lse (B, Hq, stat_len) fp32 or the
    given one, cleaned K or None), and the launch as (compiled, args, constexprs) for
    ``relaunch.Relaunch`` (slots 0-8: out, do, dlse, lse, delta, lse copy, dq_acc, k, cleaned k;
    k in the last two without cleaning)."""
    b, hq, lq = lse.shape
    hkv, lk, d_k = k.shape[1:]
    d = out.shape[-1]
    stats = torch.empty((2 if dq_acc is not None else 1, b, hq, stat_len), dtype=torch.float32, device=lse.device)
    delta, lse_out = stats[0], (stats[1] if dq_acc is not None else lse)
    k_clean = torch.empty((b, hkv, lk, d_k), dtype=k.dtype, device=k.device) if dq_acc is None else None
    row_blocks, key_blocks = triton.cdiv(stat_len, 64), (triton.cdiv(lk, 64) if dq_acc is None else 0)
    k_out = k_clean if k_clean is not None else k
    args = (out, do, dlse if dlse is not None else delta, lse, delta, lse_out, dq_acc if dq_acc is not None else delta,
            k, k_out, *out.stride(), *do.stride(), *k.stride()[:3], *k_out.stride()[:3],
            hq, hkv, lq, lk, d, d_k, dq_acc.shape[-1] if dq_acc is not None else 0, stat_len, b * hq * row_blocks,
            key_blocks)
    constexprs = dict(HAS_DLSE=dlse is not None, COPY_LSE=dq_acc is not None, ZERO_DQ=dq_acc is not None,
                      BLOCK_M=64, BLOCK_D=next_pow2(max(d, d_k, 16)))
    grid = (b * hq * row_blocks + b * hkv * key_blocks,)
    compiled = _bwd_prep[grid](*args, **constexprs)
    return (delta, lse_out, k_clean), (compiled, grid, args, constexprs)


@triton.jit
def _attn_bwd_dkdv(
    Q, K, V, DO, LSE, DELTA, DK, DV,
    T_FULL_PTR, T_FULL_IDX, T_PART_PTR, T_PART_IDX, T_PART_SLOT, BITMAPS, K_ORDER,
    sqb, sqh, sqm, skb, skh, skn, svb, svh, svn, sdb, sdh, sdm,
    sdkb, sdkh, sdkn, sdvb, sdvh, sdvn,
    Hq, Hkv, GROUP, Lq, Lk, D, D_TMA, map_sb, map_sh, n_kt, scale, softcap,
    TILE_Q: tl.constexpr, TILE_K: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr, HAS_SOFTCAP: tl.constexpr, PRECISION: tl.constexpr,
):
    SUB_N: tl.constexpr = TILE_K // BLOCK_N
    SUB_M: tl.constexpr = TILE_Q // BLOCK_M
    pid_bh = tl.program_id(0)
    pid_r = tl.program_id(1)
    b = pid_bh // Hkv
    kvh = pid_bh % Hkv
    kt = tl.load(K_ORDER + (b * map_sb + kvh * GROUP * map_sh) * n_kt + pid_r // SUB_N)
    c0 = (pid_r % SUB_N) * BLOCK_N  # first column inside the tile
    n0 = kt * TILE_K + c0
    k = row_desc(K, b, kvh, skb, skh, skn, Lk, D_TMA, BLOCK_N, BLOCK_D).load([n0, 0])
    v = row_desc(V, b, kvh, svb, svh, svn, Lk, D_TMA, BLOCK_N, BLOCK_D).load([n0, 0])
    dk = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)

    for hg in range(GROUP):  # every query head reading this KV head: GQA sum in registers
        h = kvh * GROUP + hg
        col = (b * map_sb + h * map_sh) * n_kt + kt
        q_desc = row_desc(Q, b, h, sqb, sqh, sqm, Lq, D_TMA, BLOCK_M, BLOCK_D)
        do_desc = row_desc(DO, b, h, sdb, sdh, sdm, Lq, D_TMA, BLOCK_M, BLOCK_D)
        stat_off = (b * Hq + h).to(tl.int64) * Lq
        # (tile, sub-block) pairs flattened into one loop per class, as in the forward kernel
        f0, f1 = tl.load(T_FULL_PTR + col) * SUB_M, tl.load(T_FULL_PTR + col + 1) * SUB_M
        p0, p1 = tl.load(T_PART_PTR + col) * SUB_M, tl.load(T_PART_PTR + col + 1) * SUB_M
        for j in range(f0, f1):
            m0 = tl.load(T_FULL_IDX + j // SUB_M) * TILE_Q + (j % SUB_M) * BLOCK_M
            q, do, lse2, delta = _load_rows(q_desc, do_desc, LSE, DELTA, stat_off, m0, Lq, BLOCK_M)
            p, ds, _ = _bwd_scores(q, k, v, do, lse2, delta, None, scale, softcap, True, False, HAS_SOFTCAP,
                                   PRECISION)
            dv += tl.dot(p.to(do.dtype), do, input_precision=PRECISION)
            dk += tl.dot(ds.to(q.dtype), q, input_precision=PRECISION)
        for j in range(p0, p1):
            qt = tl.load(T_PART_IDX + j // SUB_M)
            r0 = (j % SUB_M) * BLOCK_M
            m0 = qt * TILE_Q + r0
            allowed = tile_bits(BITMAPS, tl.load(T_PART_SLOT + j // SUB_M), r0, c0, BLOCK_M, BLOCK_N,
                                TILE_Q, TILE_K, TRANSPOSED=True)
            q, do, lse2, delta = _load_rows(q_desc, do_desc, LSE, DELTA, stat_off, m0, Lq, BLOCK_M)
            p, ds, _ = _bwd_scores(q, k, v, do, lse2, delta, allowed, scale, softcap,
                                   True, True, HAS_SOFTCAP, PRECISION)
            dv += tl.dot(p.to(do.dtype), do, input_precision=PRECISION)
            dk += tl.dot(ds.to(q.dtype), q, input_precision=PRECISION)

    offs_n = n0 + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    kv_mask = (offs_n[:, None] < Lk) & (offs_d[None, :] < D)
    cols = offs_n[:, None].to(tl.int64)
    tl.store(DK + b.to(tl.int64) * sdkb + kvh.to(tl.int64) * sdkh + cols * sdkn + offs_d[None, :],
             (dk * scale).to(DK.dtype.element_ty), mask=kv_mask)
    tl.store(DV + b.to(tl.int64) * sdvb + kvh.to(tl.int64) * sdvh + cols * sdvn + offs_d[None, :],
             dv.to(DV.dtype.element_ty), mask=kv_mask)


@triton.jit
def _attn_bwd_dq(
    Q, K, V, DO, LSE, DELTA, DQ,
    FULL_PTR, FULL_IDX, PART_PTR, PART_IDX, BITMAPS, Q_ORDER,
    sqb, sqh, sqm, skb, skh, skn, svb, svh, svn, sdb, sdh, sdm, sdqb, sdqh, sdqm,
    Hq, GROUP, Lq, Lk, D, D_TMA, map_sb, map_sh, n_qt, scale, softcap,
    TILE_Q: tl.constexpr, TILE_K: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr, HAS_SOFTCAP: tl.constexpr, PRECISION: tl.constexpr,
):
    SUB_M: tl.constexpr = TILE_Q // BLOCK_M
    SUB_N: tl.constexpr = TILE_K // BLOCK_N
    pid_bh = tl.program_id(0)
    pid_r = tl.program_id(1)
    b = pid_bh // Hq
    h = pid_bh % Hq
    g = b * map_sb + h * map_sh
    qt = tl.load(Q_ORDER + g * n_qt + pid_r // SUB_M)
    r0 = (pid_r % SUB_M) * BLOCK_M
    m0 = qt * TILE_Q + r0
    row = g * n_qt + qt
    kvh = h // GROUP
    q, do, lse2, delta = _load_rows(row_desc(Q, b, h, sqb, sqh, sqm, Lq, D_TMA, BLOCK_M, BLOCK_D),
                                    row_desc(DO, b, h, sdb, sdh, sdm, Lq, D_TMA, BLOCK_M, BLOCK_D),
                                    LSE, DELTA, pid_bh.to(tl.int64) * Lq, m0, Lq, BLOCK_M)
    k_desc = row_desc(K, b, kvh, skb, skh, skn, Lk, D_TMA, BLOCK_N, BLOCK_D)
    v_desc = row_desc(V, b, kvh, svb, svh, svn, Lk, D_TMA, BLOCK_N, BLOCK_D)
    dq = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)

    for j in range(tl.load(FULL_PTR + row) * SUB_N, tl.load(FULL_PTR + row + 1) * SUB_N):
        n0 = tl.load(FULL_IDX + j // SUB_N) * TILE_K + (j % SUB_N) * BLOCK_N
        k = k_desc.load([n0, 0])
        _, ds, _ = _bwd_scores(q, k, v_desc.load([n0, 0]), do, lse2, delta, None, scale, softcap,
                               False, False, HAS_SOFTCAP, PRECISION)
        dq += tl.dot(ds.to(k.dtype), k, input_precision=PRECISION)
    for j in range(tl.load(PART_PTR + row) * SUB_N, tl.load(PART_PTR + row + 1) * SUB_N):
        idx = j // SUB_N
        c0 = (j % SUB_N) * BLOCK_N
        n0 = tl.load(PART_IDX + idx) * TILE_K + c0
        allowed = tile_bits(BITMAPS, idx, r0, c0, BLOCK_M, BLOCK_N, TILE_Q, TILE_K)
        k = k_desc.load([n0, 0])  # K here is the cleaned copy (see attention_backward)
        _, ds, _ = _bwd_scores(q, k, v_desc.load([n0, 0]), do, lse2, delta, allowed, scale, softcap,
                               False, True, HAS_SOFTCAP, PRECISION)
        dq += tl.dot(ds.to(k.dtype), k, input_precision=PRECISION)

    offs_m = m0 + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    tl.store(DQ + b.to(tl.int64) * sdqb + h.to(tl.int64) * sdqh + offs_m[:, None].to(tl.int64) * sdqm
             + offs_d[None, :], (dq * scale).to(DQ.dtype.element_ty),
             mask=(offs_m[:, None] < Lq) & (offs_d[None, :] < D))


_PLANS = "_backward_plans"  # where BackwardPlans live on a map (``plans.py``)


def _plan_key(do, q, k, v, out, lse, dlse, scale, softcap):
    """The key of a backward call's plan (``plans.py``), or None where calls are not replayed."""
    if not plans.replayable(q):
        return None
    tensors = (do, q, k, v, out, lse) if dlse is None else (do, q, k, v, out, lse, dlse)
    return (plans.layouts(*tensors), q.device, scale, softcap, flash_bwd_sm90.ENABLED, flash_bwd_sm90_wide.ENABLED,
            flash_bwd_sm90.PERSISTENT_MAX_MEAN_TILES)


def attention_backward(do: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor,
                       lse: torch.Tensor, dlse: torch.Tensor | None, bm: BlockMap, scale: float,
                       softcap: float | None, deterministic: bool = False):
    """Gradients of ``attention_forward``. do/q/out: (B, Hq, Lq, D) any strides; k/v: (B, Hkv, Lk, D);
    lse/dlse: (B, Hq, Lq). ``deterministic``: use the bitwise-reproducible portable kernels
    even where the one-pass Hopper kernel could run (see the module docstring).
    Returns dq, dk, dv shaped and typed like q, k, v."""
    b, hq, lq, d = q.shape
    hkv, lk = k.shape[1], k.shape[2]
    # d lse / d S = P, so a gradient on lse enters as dS = P * (dP - (delta - dlse))
    dlse = dlse.float().contiguous() if dlse is not None else None
    lse = lse.contiguous()
    key = None if deterministic else _plan_key(do, q, k, v, out, lse, dlse, scale, softcap)
    plan = plans.recall(bm, _PLANS, key)
    if plan is not None:
        return plan(do, q, k, v, out, lse, dlse)
    ensure_allocator()
    d_tma = padded_dim(d, q.dtype)
    given = (q, k, v, do)
    q, k, v, do = (tma_operand(t, d_tma) for t in given)
    dk = torch.empty((b, hkv, lk, d), dtype=k.dtype, device=k.device)
    dv = torch.empty((b, hkv, lk, d), dtype=v.dtype, device=v.device)
    sb, sh = map_strides(bm)
    wide = not deterministic and flash_bwd_sm90_wide.supported(q, bm, d_tma, softcap, hkv)
    if wide or (not deterministic and flash_bwd_sm90.supported(q, bm, d_tma, softcap, hkv)):
        # one pass with dQ by fp32 reduce-adds (not bitwise reproducible); its accumulator is
        # zeroed and its padded stats written by the preparation launch. Head dims above 128:
        # ``flash_bwd_sm90_wide``, same arguments
        dq_acc = torch.empty((b, hq, lq, d_tma), dtype=torch.float32, device=q.device)
        (delta, lse_pad, _), prep = prepare(out, do, lse, dlse, k, -(-lq // 64) * 64, dq_acc)
        run, kernel = ((flash_bwd_sm90_wide.backward_wide, flash_bwd_sm90_wide._attn_bwd_wide) if wide
                       else (flash_bwd_sm90.backward_sm90, flash_bwd_sm90._attn_bwd_sm90))
        main = run(q, k, v, do, lse_pad, delta, dk, dv, dq_acc, bm, scale, d, d_tma, sb, sh)
        # inputs used as given (no aligned copies): later calls like this one replay its launches
        if key is not None and main is not None and all(a is b for a, b in zip((q, k, v, do), given)):
            plans.remember(bm, _PLANS, key, plans.BackwardPlan(prep, _bwd_prep, main, kernel, dq_acc, dk, q.dtype,
                                                               lse_pad))
        return dq_acc[..., :d].to(q.dtype), dk, dv
    # hidden non-finite keys must not reach dQ through 0 * inf: dQ reads K cleaned (in the
    # preparation launch, with delta)
    (delta, _, k_clean), _ = prepare(out, do, lse, dlse, k, lq, None)
    constexprs = dict(TILE_Q=bm.block_q, TILE_K=bm.block_k, BLOCK_D=next_pow2(max(d_tma, 16)),
                      HAS_SOFTCAP=softcap is not None, PRECISION=dot_precision(q.dtype))
    cap = softcap if softcap else 1.0
    key = (bm.block_q, bm.block_k, d, q.dtype, q.device)
    launch(_attn_bwd_dkdv, lambda c: (b * hkv, bm.n_k_tiles * (bm.block_k // c["BLOCK_N"])),
           (q, k, v, do, lse, delta, dk, dv,
            bm.t_full_ptr, bm.t_full_idx, bm.t_part_ptr, bm.t_part_idx, bm.t_part_slot, bm.bitmaps, bm.k_order,
            *q.stride()[:3], *k.stride()[:3], *v.stride()[:3], *do.stride()[:3], *dk.stride()[:3], *dv.stride()[:3],
            hq, hkv, hq // hkv, lq, lk, d, d_tma, sb, sh, bm.n_k_tiles, scale, cap),
           constexprs, dkdv_config(bm.block_q, bm.block_k, d, q.dtype), ("dkdv",) + key)
    dq = torch.empty((b, hq, lq, d), dtype=q.dtype, device=q.device)
    launch(_attn_bwd_dq, lambda c: (b * hq, bm.n_q_tiles * (bm.block_q // c["BLOCK_M"])),
           (q, k_clean, v, do, lse, delta, dq,
            bm.full_ptr, bm.full_idx, bm.part_ptr, bm.part_idx, bm.bitmaps, bm.q_order,
            *q.stride()[:3], *k_clean.stride()[:3], *v.stride()[:3], *do.stride()[:3], *dq.stride()[:3],
            hq, hq // hkv, lq, lk, d, d_tma, sb, sh, bm.n_q_tiles, scale, cap),
           constexprs, dq_config(bm.block_q, bm.block_k, d, q.dtype), ("dq",) + key)
    return dq, dk, dv
