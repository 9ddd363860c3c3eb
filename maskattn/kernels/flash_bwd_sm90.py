"""Hopper backward kernels (Gluon, warp-specialized): dK/dV over the map's column view, and dQ
over its row view.

DRAFT, never run: written and compiled for sm_90a on the CPU machine in session 8 after that
session's device time was spent (ptxas, 168 registers: dK/dV no spills in the query-block
loop, 200 B in the outer loops; dQ no spills; no wgmma serialisation). ``ENABLED = False`` until the GPU tests
(tests/kernels/test_flash_bwd_sm90.py) pass and it is measured against the portable kernel.

The same machinery as the forward (``flash_fwd_sm90``), transposed: one program is one key
tile of 128 keys of one (batch, KV head); a producer warpgroup loads the tile's K and V once
and then, for every query head that shares the KV head (the GQA sum stays in registers) and
every non-empty query tile of the map's column view, a 64-row block of Q and of dO into a ring;
two consumer warpgroups own 64 keys each and per query block compute

    S^T = K Q^T,  dP^T = V dO^T,  P^T = exp2(S^T * c - lse),  dS^T = P^T (dP^T - delta),
    dV += P^T dO,  dK += dS^T Q

with P^T and dS^T as register operands of the last two products. Masked pairs are dropped
with ``where`` (a NaN key or value in a masked slot reaches no gradient).

The dQ kernel is the forward's structure (``flash_fwd_sm90``: the same work items, producer
and two 64-row consumers) with three products per key block of 64 keys: S = Q K^T,
dP = dO V^T, dQ += dS K, reading K cleaned of non-finite values (as the portable dQ kernel).
"""
from __future__ import annotations

import functools

import torch

from ..block_map import BlockMap
from . import flash_fwd_sm90 as fwd

try:
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl
    from triton.experimental.gluon.language.nvidia.hopper import mbarrier, tma, warpgroup_mma, warpgroup_mma_wait
    HAVE_GLUON = hasattr(gl, "warp_specialize")
except ImportError:  # pragma: no cover - older Triton
    HAVE_GLUON = False

ENABLED = False  # draft: see the module docstring
STAGES = 3  # Q / dO blocks in the ring
_CONSUMER_REGS, _PRODUCER_REGS = 240, 24

if HAVE_GLUON:
    HALF = gl.constexpr(64)  # keys per consumer warpgroup, and query rows per block

    @gluon.jit
    def _key_tile(t, n_bk, Hkv, GROUP, map_sb, map_sh, n_kt, K_ORDER):
        """Work item t (rank-major: every KV head's heaviest key tiles first) -> (b, KV head, key tile)."""
        bk = t % n_bk
        b = bk // Hkv
        kvh = bk % Hkv
        kt = gl.load(K_ORDER + (b * map_sb + kvh * GROUP * map_sh) * n_kt + t // n_bk)
        return b, kvh, kt

    @gluon.jit
    def _column(b, h, kt, map_sb, map_sh, n_kt, T_FULL_PTR, T_PART_PTR, SUB_M: gl.constexpr):
        """The map column of (b, query head h, key tile kt) -> first full / partial entry, blocks
        of full tiles, blocks in all (SUB_M blocks of HALF query rows per query tile)."""
        col = (b * map_sb + h * map_sh) * n_kt + kt
        f0 = gl.load(T_FULL_PTR + col)
        nf = (gl.load(T_FULL_PTR + col + 1) - f0) * SUB_M
        p0 = gl.load(T_PART_PTR + col)
        return f0, nf, p0, nf + (gl.load(T_PART_PTR + col + 1) - p0) * SUB_M

    @gluon.jit
    def _query_block(j, f0, nf, p0, T_FULL_IDX, T_PART_IDX, TILE_Q: gl.constexpr, SUB_M: gl.constexpr):
        """Block j of a column (full tiles first) -> (first query row, that row inside its tile, entry)."""
        if j < nf:
            e = f0 + j // SUB_M
            qt = gl.load(T_FULL_IDX + e)
        else:
            e = p0 + (j - nf) // SUB_M
            qt = gl.load(T_PART_IDX + e)
        r0 = (j % SUB_M) * HALF
        return qt * TILE_Q + r0, r0, e

    @gluon.jit
    def _bwd_producer(q_desc, do_desc, k_desc, v_desc, lse_desc, delta_desc, q_buf, do_buf, k_buf, v_buf, lse_buf,
                      delta_buf, kv_ready, kv_empty, qd_ready, qd_empty, n_items, n_bk, Hq, Hkv, GROUP, Lq, map_sb, map_sh, n_kt, K_ORDER, T_FULL_PTR, T_FULL_IDX,
                      T_PART_PTR, T_PART_IDX, TILE_Q: gl.constexpr, TILE_K: gl.constexpr):
        SUB_M: gl.constexpr = TILE_Q // HALF
        NUM: gl.constexpr = q_buf.type.shape[0]
        it = 0  # query blocks loaded so far (ring slot and phase)
        ki = 0  # key tiles loaded so far
        for t in range(gl.program_id(0), n_items, gl.num_programs(0)):
            b, kvh, kt = _key_tile(t, n_bk, Hkv, GROUP, map_sb, map_sh, n_kt, K_ORDER)
            n0 = kt * TILE_K
            mbarrier.wait(kv_empty, (ki & 1) ^ 1)  # both consumers are done with the previous tile
            mbarrier.expect(kv_ready, 4 * k_desc.block_type.nbytes)
            for w in gl.static_range(2):
                tma.async_copy_global_to_shared(k_desc, [b, kvh, n0 + w * HALF, 0], kv_ready, k_buf.index(w))
                tma.async_copy_global_to_shared(v_desc, [b, kvh, n0 + w * HALF, 0], kv_ready, v_buf.index(w))
            ki += 1
            for hg in range(GROUP):
                h = kvh * GROUP + hg
                f0, nf, p0, n = _column(b, h, kt, map_sb, map_sh, n_kt, T_FULL_PTR, T_PART_PTR, SUB_M)
                for j in range(n):
                    m0, r0, e = _query_block(j, f0, nf, p0, T_FULL_IDX, T_PART_IDX, TILE_Q, SUB_M)
                    s = it % NUM
                    mbarrier.wait(qd_empty.index(s), ((it // NUM) & 1) ^ 1)
                    mbarrier.expect(qd_ready.index(s), 2 * q_desc.block_type.nbytes + 2 * lse_desc.block_type.nbytes)
                    tma.async_copy_global_to_shared(q_desc, [b, h, m0, 0], qd_ready.index(s), q_buf.index(s))
                    tma.async_copy_global_to_shared(do_desc, [b, h, m0, 0], qd_ready.index(s), do_buf.index(s))
                    stat = (b * Hq + h) * Lq + m0
                    tma.async_copy_global_to_shared(lse_desc, [stat], qd_ready.index(s), lse_buf.index(s))
                    tma.async_copy_global_to_shared(delta_desc, [stat], qd_ready.index(s), delta_buf.index(s))
                    it += 1

    @gluon.jit
    def _bits_t(BITMAPS, slot, r0, c0, S_LAYOUT: gl.constexpr, TILE_Q: gl.constexpr, TILE_K: gl.constexpr):
        """Bits of partial tile ``slot`` in the S^T layout: rows = keys [c0, c0 + HALF) and columns
        = query rows [r0, r0 + HALF) inside the tile (``c0`` a multiple of 32): one 32-bit word
        load per (query row, word), broadcast along the keys."""
        WORDS: gl.constexpr = TILE_K // 32
        rows = r0 + gl.arange(0, HALF, layout=gl.SliceLayout(0, S_LAYOUT))
        keys = c0 + gl.arange(0, HALF, layout=gl.SliceLayout(1, S_LAYOUT))
        base = BITMAPS + slot.to(gl.int64) * (TILE_Q * WORDS) + rows * WORDS + c0 // 32
        shift = (keys % 32)[:, None]
        bits = (gl.load(base)[None, :] >> shift) & 1
        second = ((keys // 32 - c0 // 32) == 1)[:, None]
        bits = gl.where(second, (gl.load(base + 1)[None, :] >> shift) & 1, bits)
        return bits != 0

    @gluon.jit
    def _grads(st, dpt_tok, lse2, delta_smem, c, allowed, S_LAYOUT: gl.constexpr, MASKED: gl.constexpr):
        """P^T and dS^T of a block from the raw scores S^T (waits for dP^T, still in flight;
        delta read from shared memory only then)."""
        p = gl.exp2(st * c - lse2[None, :])
        if MASKED:
            p = gl.where(allowed, p, 0.0)
        dpt = warpgroup_mma_wait(0, deps=[dpt_tok])
        delta = delta_smem.load(gl.SliceLayout(0, S_LAYOUT))
        ds = p * (dpt - delta[None, :])
        if MASKED:  # dP of a masked pair may be NaN (a NaN value): drop it, don't multiply
            ds = gl.where(allowed, ds, 0.0)
        return p, ds

    @gluon.jit
    def _bwd_consumer(WG: gl.constexpr, q_buf, do_buf, k_buf, v_buf, lse_buf, delta_buf, kv_ready, kv_empty,
                      qd_ready, qd_empty, DK, DV, BITMAPS, n_items, n_bk, Hq, Hkv, GROUP, map_sb, map_sh, n_kt, K_ORDER,
                      T_FULL_PTR, T_FULL_IDX, T_PART_PTR, T_PART_IDX, T_PART_SLOT, sdkb, sdkh, sdkn, sdvb, sdvh,
                      sdvn, Lq, Lk, D, c, scale, TILE_Q: gl.constexpr, TILE_K: gl.constexpr,
                      BLOCK_D: gl.constexpr):
        SUB_M: gl.constexpr = TILE_Q // HALF
        NUM: gl.constexpr = q_buf.type.shape[0]
        S_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                           instr_shape=[16, HALF, 16])
        O_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                           instr_shape=[16, BLOCK_D, 16])
        A_LAYOUT: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=O_LAYOUT, k_width=2)
        dtype: gl.constexpr = q_buf.dtype
        s_zero = gl.zeros([HALF, HALF], gl.float32, layout=S_LAYOUT)
        kb = k_buf.index(WG).reshape([HALF, BLOCK_D])
        vb = v_buf.index(WG).reshape([HALF, BLOCK_D])
        it = 0
        ki = 0
        for t in range(gl.program_id(0), n_items, gl.num_programs(0)):
            b, kvh, kt = _key_tile(t, n_bk, Hkv, GROUP, map_sb, map_sh, n_kt, K_ORDER)
            dk = gl.zeros([HALF, BLOCK_D], gl.float32, layout=O_LAYOUT)
            dv = gl.zeros([HALF, BLOCK_D], gl.float32, layout=O_LAYOUT)
            mbarrier.wait(kv_ready, ki & 1)
            ki += 1
            for hg in range(GROUP):
                h = kvh * GROUP + hg
                f0, nf, p0, n = _column(b, h, kt, map_sb, map_sh, n_kt, T_FULL_PTR, T_PART_PTR, SUB_M)
                for j in range(n):
                    m0, r0, e = _query_block(j, f0, nf, p0, T_FULL_IDX, T_PART_IDX, TILE_Q, SUB_M)
                    s = it % NUM
                    qb = q_buf.index(s).reshape([HALF, BLOCK_D])
                    dob = do_buf.index(s).reshape([HALF, BLOCK_D])
                    mbarrier.wait(qd_ready.index(s), (it // NUM) & 1)
                    st_tok = warpgroup_mma(kb, qb.permute((1, 0)), s_zero, use_acc=False, is_async=True)
                    dpt_tok = warpgroup_mma(vb, dob.permute((1, 0)), s_zero, use_acc=False, is_async=True)
                    # per-query statistics from shared memory, read late (short-lived registers);
                    # rows past Lq read zeros there: those and fully masked rows (lse = -inf)
                    # take lse = +inf, so P = 0
                    offs_q = m0 + gl.arange(0, HALF, layout=gl.SliceLayout(0, S_LAYOUT))
                    lse = lse_buf.index(s).load(gl.SliceLayout(0, S_LAYOUT))
                    lse2 = gl.where((offs_q < Lq) & (lse != float("-inf")), lse * 1.4426950408889634, float("inf"))
                    st = warpgroup_mma_wait(1, deps=[st_tok])
                    if j < nf:
                        p, ds = _grads(st, dpt_tok, lse2, delta_buf.index(s), c, None, S_LAYOUT, False)
                    else:
                        allowed = _bits_t(BITMAPS, gl.load(T_PART_SLOT + e), r0, WG * HALF, S_LAYOUT, TILE_Q, TILE_K)
                        p, ds = _grads(st, dpt_tok, lse2, delta_buf.index(s), c, allowed, S_LAYOUT, True)
                    dv_tok = warpgroup_mma(gl.convert_layout(p.to(dtype), A_LAYOUT), dob, dv, is_async=True)
                    dk_tok = warpgroup_mma(gl.convert_layout(ds.to(dtype), A_LAYOUT), qb, dk, is_async=True)
                    dv, dk = warpgroup_mma_wait(0, deps=[dv_tok, dk_tok])
                    mbarrier.arrive(qd_empty.index(s), count=1)
                    it += 1
            mbarrier.arrive(kv_empty, count=1)
            offs_n = kt * TILE_K + WG * HALF + gl.arange(0, HALF, layout=gl.SliceLayout(1, O_LAYOUT))
            offs_d = gl.arange(0, BLOCK_D, layout=gl.SliceLayout(0, O_LAYOUT))
            ok = (offs_n < Lk)[:, None] & (offs_d[None, :] < D)
            rows = offs_n[:, None].to(gl.int64)
            gl.store(DK + b.to(gl.int64) * sdkb + kvh.to(gl.int64) * sdkh + rows * sdkn + offs_d[None, :],
                     (dk * scale).to(DK.dtype.element_ty), mask=ok)
            gl.store(DV + b.to(gl.int64) * sdvb + kvh.to(gl.int64) * sdvh + rows * sdvn + offs_d[None, :],
                     dv.to(DV.dtype.element_ty), mask=ok)

    @gluon.jit
    def _attn_bwd_dkdv_sm90(
        Q, K, V, DO, LSE, DELTA, DK, DV,
        T_FULL_PTR, T_FULL_IDX, T_PART_PTR, T_PART_IDX, T_PART_SLOT, BITMAPS, K_ORDER,
        sqb, sqh, sqm, skb, skh, skn, svb, svh, svn, sdb, sdh, sdm, sdkb, sdkh, sdkn, sdvb, sdvh, sdvn,
        B, Hq, Hkv, GROUP, Lq, Lk, D, D_TMA, map_sb, map_sh, n_kt, n_items, scale,
        SMEM: gl.constexpr, STAT_SMEM: gl.constexpr, TILE_Q: gl.constexpr, TILE_K: gl.constexpr, BLOCK_D: gl.constexpr,
        NUM_STAGES: gl.constexpr, CONSUMER_REGS: gl.constexpr,
    ):
        dtype: gl.constexpr = Q.dtype.element_ty
        block: gl.constexpr = [1, 1, HALF, BLOCK_D]
        q_desc = tma.make_tensor_descriptor(Q, shape=[B, Hq, Lq, D_TMA], strides=[sqb, sqh, sqm, 1],
                                            block_shape=block, layout=SMEM)
        do_desc = tma.make_tensor_descriptor(DO, shape=[B, Hq, Lq, D_TMA], strides=[sdb, sdh, sdm, 1],
                                             block_shape=block, layout=SMEM)
        k_desc = tma.make_tensor_descriptor(K, shape=[B, Hkv, Lk, D_TMA], strides=[skb, skh, skn, 1],
                                            block_shape=block, layout=SMEM)
        v_desc = tma.make_tensor_descriptor(V, shape=[B, Hkv, Lk, D_TMA], strides=[svb, svh, svn, 1],
                                            block_shape=block, layout=SMEM)
        # lse and delta as flat (B * Hq * Lq,) vectors (a row stride of Lq floats need not be
        # 16-byte aligned); a block running past Lq reads the next head's values, which the
        # consumers mask by position
        lse_desc = tma.make_tensor_descriptor(LSE, shape=[B * Hq * Lq], strides=[1], block_shape=[HALF],
                                              layout=STAT_SMEM)
        delta_desc = tma.make_tensor_descriptor(DELTA, shape=[B * Hq * Lq], strides=[1], block_shape=[HALF],
                                                layout=STAT_SMEM)
        lse_buf = gl.allocate_shared_memory(gl.float32, [NUM_STAGES, HALF], STAT_SMEM)
        delta_buf = gl.allocate_shared_memory(gl.float32, [NUM_STAGES, HALF], STAT_SMEM)
        k_buf = gl.allocate_shared_memory(dtype, [2, 1, 1, HALF, BLOCK_D], SMEM)
        v_buf = gl.allocate_shared_memory(dtype, [2, 1, 1, HALF, BLOCK_D], SMEM)
        q_buf = gl.allocate_shared_memory(dtype, [NUM_STAGES, 1, 1, HALF, BLOCK_D], SMEM)
        do_buf = gl.allocate_shared_memory(dtype, [NUM_STAGES, 1, 1, HALF, BLOCK_D], SMEM)
        kv_ready = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
        kv_empty = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
        qd_ready = gl.allocate_shared_memory(gl.int64, [NUM_STAGES, 1], mbarrier.MBarrierLayout())
        qd_empty = gl.allocate_shared_memory(gl.int64, [NUM_STAGES, 1], mbarrier.MBarrierLayout())
        mbarrier.init(kv_ready, count=1)
        mbarrier.init(kv_empty, count=2)  # released by both consumers
        for i in gl.static_range(NUM_STAGES):
            mbarrier.init(qd_ready.index(i), count=1)
            mbarrier.init(qd_empty.index(i), count=2)
        n_bk = B * Hkv
        c = scale * 1.4426950408889634
        gl.warp_specialize([
            (_bwd_producer, (q_desc, do_desc, k_desc, v_desc, lse_desc, delta_desc, q_buf, do_buf, k_buf, v_buf,
                             lse_buf, delta_buf, kv_ready, kv_empty,
                             qd_ready, qd_empty, n_items, n_bk, Hq, Hkv, GROUP, Lq, map_sb, map_sh, n_kt, K_ORDER,
                             T_FULL_PTR, T_FULL_IDX, T_PART_PTR, T_PART_IDX, TILE_Q, TILE_K)),
            (_bwd_consumer, (0, q_buf, do_buf, k_buf, v_buf, lse_buf, delta_buf, kv_ready, kv_empty, qd_ready,
                             qd_empty, DK, DV, BITMAPS, n_items, n_bk, Hq, Hkv, GROUP, map_sb, map_sh, n_kt, K_ORDER,
                             T_FULL_PTR, T_FULL_IDX, T_PART_PTR, T_PART_IDX, T_PART_SLOT, sdkb, sdkh, sdkn, sdvb,
                             sdvh, sdvn, Lq, Lk, D, c, scale, TILE_Q, TILE_K, BLOCK_D)),
            (_bwd_consumer, (1, q_buf, do_buf, k_buf, v_buf, lse_buf, delta_buf, kv_ready, kv_empty, qd_ready,
                             qd_empty, DK, DV, BITMAPS, n_items, n_bk, Hq, Hkv, GROUP, map_sb, map_sh, n_kt, K_ORDER,
                             T_FULL_PTR, T_FULL_IDX, T_PART_PTR, T_PART_IDX, T_PART_SLOT, sdkb, sdkh, sdkn, sdvb,
                             sdvh, sdvn, Lq, Lk, D, c, scale, TILE_Q, TILE_K, BLOCK_D)),
        ], [4, 4], [CONSUMER_REGS, CONSUMER_REGS])


    @gluon.jit
    def _dq_producer(q_desc, do_desc, k_desc, v_desc, q_buf, do_buf, k_buf, v_buf, q_ready, q_empty, kv_ready,
                     kv_empty, n_items, n_bh, H, GROUP, map_sb, map_sh, n_qt, Q_ORDER, FULL_PTR, PART_PTR, FULL_IDX,
                     PART_IDX, TILE_Q: gl.constexpr, TILE_K: gl.constexpr, BLOCK_N: gl.constexpr):
        SUB_N: gl.constexpr = TILE_K // BLOCK_N
        NUM: gl.constexpr = k_buf.type.shape[0]
        it = 0
        qi = 0
        for t in range(gl.program_id(0), n_items, gl.num_programs(0)):
            bh, b, h, kvh, m0, row0, f0, nf, p0, n = fwd._item(t, n_bh, H, GROUP, map_sb, map_sh, n_qt, Q_ORDER,
                                                             FULL_PTR, PART_PTR, TILE_Q, SUB_N)
            if n > 0:
                mbarrier.wait(q_empty, (qi & 1) ^ 1)
                mbarrier.expect(q_ready, 4 * q_desc.block_type.nbytes)
                for w in gl.static_range(2):
                    tma.async_copy_global_to_shared(q_desc, [b, h, m0 + w * HALF, 0], q_ready, q_buf.index(w))
                    tma.async_copy_global_to_shared(do_desc, [b, h, m0 + w * HALF, 0], q_ready, do_buf.index(w))
                qi += 1
            for j in range(n):
                s = it % NUM
                n0 = fwd._key_block(j, nf, f0, p0, FULL_IDX, PART_IDX, TILE_K, SUB_N, BLOCK_N)
                mbarrier.wait(kv_empty.index(s), ((it // NUM) & 1) ^ 1)
                mbarrier.expect(kv_ready.index(s), 2 * k_desc.block_type.nbytes)
                tma.async_copy_global_to_shared(k_desc, [b, kvh, n0, 0], kv_ready.index(s), k_buf.index(s))
                tma.async_copy_global_to_shared(v_desc, [b, kvh, n0, 0], kv_ready.index(s), v_buf.index(s))
                it += 1

    @gluon.jit
    def _dq_grads(s, dp_tok, lse2, delta, c, allowed, MASKED: gl.constexpr):
        """P and dS of a block from the raw scores S (waits for dP, still in flight)."""
        p = gl.exp2(s * c - lse2[:, None])
        if MASKED:
            p = gl.where(allowed, p, 0.0)
        dp = warpgroup_mma_wait(0, deps=[dp_tok])
        ds = p * (dp - delta[:, None])
        if MASKED:  # dP of a masked pair may be NaN (a NaN value): drop it, don't multiply
            ds = gl.where(allowed, ds, 0.0)
        return ds

    @gluon.jit
    def _dq_consumer(WG: gl.constexpr, q_buf, do_buf, k_buf, v_buf, q_ready, q_empty, kv_ready, kv_empty, DQ, LSE,
                     DELTA, BITMAPS, n_items, n_bh, H, GROUP, map_sb, map_sh, n_qt, Q_ORDER, FULL_PTR, PART_PTR,
                     sdqb, sdqh, sdqm, Lq, D, c, scale, TILE_Q: gl.constexpr, TILE_K: gl.constexpr,
                     BLOCK_N: gl.constexpr, BLOCK_D: gl.constexpr):
        SUB_N: gl.constexpr = TILE_K // BLOCK_N
        NUM: gl.constexpr = k_buf.type.shape[0]
        S_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                           instr_shape=[16, BLOCK_N, 16])
        O_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                           instr_shape=[16, BLOCK_D, 16])
        A_LAYOUT: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=O_LAYOUT, k_width=2)
        dtype: gl.constexpr = q_buf.dtype
        s_zero = gl.zeros([HALF, BLOCK_N], gl.float32, layout=S_LAYOUT)
        qb = q_buf.index(WG).reshape([HALF, BLOCK_D])
        dob = do_buf.index(WG).reshape([HALF, BLOCK_D])
        it = 0
        qi = 0
        for t in range(gl.program_id(0), n_items, gl.num_programs(0)):
            bh, b, h, kvh, m0, row0, f0, nf, p0, n = fwd._item(t, n_bh, H, GROUP, map_sb, map_sh, n_qt, Q_ORDER,
                                                             FULL_PTR, PART_PTR, TILE_Q, SUB_N)
            m0 = m0 + WG * HALF
            row0 = row0 + WG * HALF
            offs_m = m0 + gl.arange(0, HALF, layout=gl.SliceLayout(1, S_LAYOUT))
            stat = bh.to(gl.int64) * Lq
            lse = gl.load(LSE + stat + offs_m, mask=offs_m < Lq, other=float("-inf"))
            lse2 = gl.where(lse == float("-inf"), float("inf"), lse * 1.4426950408889634)
            delta = gl.load(DELTA + stat + offs_m, mask=offs_m < Lq, other=0.0)
            dq = gl.zeros([HALF, BLOCK_D], gl.float32, layout=O_LAYOUT)
            if n > 0:
                mbarrier.wait(q_ready, qi & 1)
                qi += 1
                for j in range(n):
                    s = (it + j) % NUM
                    kb = k_buf.index(s).reshape([BLOCK_N, BLOCK_D])
                    vb = v_buf.index(s).reshape([BLOCK_N, BLOCK_D])
                    mbarrier.wait(kv_ready.index(s), ((it + j) // NUM) & 1)
                    s_tok = warpgroup_mma(qb, kb.permute((1, 0)), s_zero, use_acc=False, is_async=True)
                    dp_tok = warpgroup_mma(dob, vb.permute((1, 0)), s_zero, use_acc=False, is_async=True)
                    sc = warpgroup_mma_wait(1, deps=[s_tok])
                    if j < nf:
                        ds = _dq_grads(sc, dp_tok, lse2, delta, c, None, False)
                    else:
                        jp = j - nf
                        allowed = fwd._block_bits(BITMAPS, p0 + jp // SUB_N, row0, (jp % SUB_N) * BLOCK_N,
                                                  S_LAYOUT, HALF, BLOCK_N, TILE_Q, TILE_K)
                        ds = _dq_grads(sc, dp_tok, lse2, delta, c, allowed, True)
                    dq_tok = warpgroup_mma(gl.convert_layout(ds.to(dtype), A_LAYOUT), kb, dq, is_async=True)
                    dq = warpgroup_mma_wait(0, deps=[dq_tok])
                    mbarrier.arrive(kv_empty.index(s), count=1)
                mbarrier.arrive(q_empty, count=1)
                it += n
            offs_o = m0 + gl.arange(0, HALF, layout=gl.SliceLayout(1, O_LAYOUT))
            offs_d = gl.arange(0, BLOCK_D, layout=gl.SliceLayout(0, O_LAYOUT))
            gl.store(DQ + b.to(gl.int64) * sdqb + h.to(gl.int64) * sdqh + offs_o[:, None].to(gl.int64) * sdqm
                     + offs_d[None, :], (dq * scale).to(DQ.dtype.element_ty),
                     mask=(offs_o < Lq)[:, None] & (offs_d[None, :] < D))

    @gluon.jit
    def _attn_bwd_dq_sm90(
        Q, K, V, DO, LSE, DELTA, DQ,
        FULL_PTR, FULL_IDX, PART_PTR, PART_IDX, BITMAPS, Q_ORDER,
        sqb, sqh, sqm, skb, skh, skn, svb, svh, svn, sdb, sdh, sdm, sdqb, sdqh, sdqm,
        B, H, GROUP, Lq, Lk, D, D_TMA, map_sb, map_sh, n_qt, n_items, scale,
        Q_SMEM: gl.constexpr, KV_SMEM: gl.constexpr, TILE_Q: gl.constexpr, TILE_K: gl.constexpr,
        BLOCK_N: gl.constexpr, BLOCK_D: gl.constexpr, NUM_STAGES: gl.constexpr, CONSUMER_REGS: gl.constexpr,
    ):
        dtype: gl.constexpr = Q.dtype.element_ty
        q_desc = tma.make_tensor_descriptor(Q, shape=[B, H, Lq, D_TMA], strides=[sqb, sqh, sqm, 1],
                                            block_shape=[1, 1, HALF, BLOCK_D], layout=Q_SMEM)
        do_desc = tma.make_tensor_descriptor(DO, shape=[B, H, Lq, D_TMA], strides=[sdb, sdh, sdm, 1],
                                             block_shape=[1, 1, HALF, BLOCK_D], layout=Q_SMEM)
        k_desc = tma.make_tensor_descriptor(K, shape=[B, H // GROUP, Lk, D_TMA], strides=[skb, skh, skn, 1],
                                            block_shape=[1, 1, BLOCK_N, BLOCK_D], layout=KV_SMEM)
        v_desc = tma.make_tensor_descriptor(V, shape=[B, H // GROUP, Lk, D_TMA], strides=[svb, svh, svn, 1],
                                            block_shape=[1, 1, BLOCK_N, BLOCK_D], layout=KV_SMEM)
        q_buf = gl.allocate_shared_memory(dtype, [2, 1, 1, HALF, BLOCK_D], Q_SMEM)
        do_buf = gl.allocate_shared_memory(dtype, [2, 1, 1, HALF, BLOCK_D], Q_SMEM)
        k_buf = gl.allocate_shared_memory(dtype, [NUM_STAGES, 1, 1, BLOCK_N, BLOCK_D], KV_SMEM)
        v_buf = gl.allocate_shared_memory(dtype, [NUM_STAGES, 1, 1, BLOCK_N, BLOCK_D], KV_SMEM)
        q_ready = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
        q_empty = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
        kv_ready = gl.allocate_shared_memory(gl.int64, [NUM_STAGES, 1], mbarrier.MBarrierLayout())
        kv_empty = gl.allocate_shared_memory(gl.int64, [NUM_STAGES, 1], mbarrier.MBarrierLayout())
        mbarrier.init(q_ready, count=1)
        mbarrier.init(q_empty, count=2)
        for i in gl.static_range(NUM_STAGES):
            mbarrier.init(kv_ready.index(i), count=1)
            mbarrier.init(kv_empty.index(i), count=2)
        n_bh = B * H
        c = scale * 1.4426950408889634
        gl.warp_specialize([
            (_dq_producer, (q_desc, do_desc, k_desc, v_desc, q_buf, do_buf, k_buf, v_buf, q_ready, q_empty, kv_ready,
                            kv_empty, n_items, n_bh, H, GROUP, map_sb, map_sh, n_qt, Q_ORDER, FULL_PTR, PART_PTR,
                            FULL_IDX, PART_IDX, TILE_Q, TILE_K, BLOCK_N)),
            (_dq_consumer, (0, q_buf, do_buf, k_buf, v_buf, q_ready, q_empty, kv_ready, kv_empty, DQ, LSE, DELTA,
                            BITMAPS, n_items, n_bh, H, GROUP, map_sb, map_sh, n_qt, Q_ORDER, FULL_PTR, PART_PTR,
                            sdqb, sdqh, sdqm, Lq, D, c, scale, TILE_Q, TILE_K, BLOCK_N, BLOCK_D)),
            (_dq_consumer, (1, q_buf, do_buf, k_buf, v_buf, q_ready, q_empty, kv_ready, kv_empty, DQ, LSE, DELTA,
                            BITMAPS, n_items, n_bh, H, GROUP, map_sb, map_sh, n_qt, Q_ORDER, FULL_PTR, PART_PTR,
                            sdqb, sdqh, sdqm, Lq, D, c, scale, TILE_Q, TILE_K, BLOCK_N, BLOCK_D)),
        ], [4, 4], [CONSUMER_REGS, CONSUMER_REGS])


@functools.lru_cache(maxsize=None)
def _capability(device: torch.device) -> tuple[int, int]:
    return torch.cuda.get_device_capability(device)


def supported(q: torch.Tensor, bm: BlockMap, d_tma: int, softcap) -> bool:
    """sm_90, fp16/bf16, padded head dim in (64, 128], no softcap, key tiles of 128 and query
    tiles of a multiple of 64."""
    if not (ENABLED and HAVE_GLUON) or q.device.type != "cuda" or softcap is not None:
        return False
    if q.dtype not in (torch.float16, torch.bfloat16) or not 64 < d_tma <= 128:
        return False
    if _capability(q.device) != (9, 0):
        return False
    return bm.block_k == 128 and bm.block_q % 64 == 0


@functools.lru_cache(maxsize=None)
def _smem_layout(dtype: torch.dtype):
    return gl.NVMMASharedLayout.get_default_for([1, 1, 64, 128], gl.bfloat16 if dtype == torch.bfloat16 else gl.float16)


@functools.lru_cache(maxsize=None)
def _stat_layout():
    return gl.NVMMASharedLayout.get_default_for([64], gl.float32)


def dkdv_sm90(q, k, v, do, lse, delta, dk, dv, bm: BlockMap, scale: float, d: int, d_tma: int, map_sb: int,
              map_sh: int):
    """q/do: (B, Hq, Lq, d_tma), k/v: (B, Hkv, Lk, d_tma), TMA-ready; lse/delta (B, Hq, Lq) fp32
    contiguous; writes dk, dv (B, Hkv, Lk, d)."""
    b, hq, lq, _ = q.shape
    hkv, lk = k.shape[1], k.shape[2]
    n_items = b * hkv * bm.n_k_tiles
    grid = (n_items,)  # one program per key tile (a persistent grid: min(n_items, SMs))
    _attn_bwd_dkdv_sm90[grid](
        q, k, v, do, lse, delta, dk, dv,
        bm.t_full_ptr, bm.t_full_idx, bm.t_part_ptr, bm.t_part_idx, bm.t_part_slot, bm.bitmaps, bm.k_order,
        *q.stride()[:3], *k.stride()[:3], *v.stride()[:3], *do.stride()[:3], *dk.stride()[:3], *dv.stride()[:3],
        b, hq, hkv, hq // hkv, lq, lk, d, d_tma, map_sb, map_sh, bm.n_k_tiles, n_items, scale,
        SMEM=_smem_layout(q.dtype), STAT_SMEM=_stat_layout(), TILE_Q=bm.block_q, TILE_K=bm.block_k, BLOCK_D=128, NUM_STAGES=STAGES,
        CONSUMER_REGS=_CONSUMER_REGS, num_warps=4, maxnreg=(2 * _CONSUMER_REGS + _PRODUCER_REGS) // 3)


def dq_sm90(q, k_clean, v, do, lse, delta, dq, bm: BlockMap, scale: float, d: int, d_tma: int, map_sb: int,
            map_sh: int):
    """q/do: (B, Hq, Lq, d_tma), k_clean/v: (B, Hkv, Lk, d_tma) (K without non-finite entries),
    TMA-ready; lse/delta (B, Hq, Lq) fp32 contiguous; writes dq (B, Hq, Lq, d). Needs query
    tiles of a multiple of 128 rows (``supported`` and ``bm.block_q % 128 == 0``)."""
    b, hq, lq, _ = q.shape
    n_items = b * hq * bm.n_q_tiles * (bm.block_q // 128)
    _attn_bwd_dq_sm90[(n_items,)](
        q, k_clean, v, do, lse, delta, dq, bm.full_ptr, bm.full_idx, bm.part_ptr, bm.part_idx, bm.bitmaps,
        bm.q_order, *q.stride()[:3], *k_clean.stride()[:3], *v.stride()[:3], *do.stride()[:3], *dq.stride()[:3],
        b, hq, hq // k_clean.shape[1], lq, k_clean.shape[2], d, d_tma, map_sb, map_sh, bm.n_q_tiles, n_items, scale,
        Q_SMEM=_smem_layout(q.dtype), KV_SMEM=_smem_layout(q.dtype), TILE_Q=bm.block_q, TILE_K=bm.block_k,
        BLOCK_N=64, BLOCK_D=128, NUM_STAGES=STAGES, CONSUMER_REGS=_CONSUMER_REGS, num_warps=4,
        maxnreg=(2 * _CONSUMER_REGS + _PRODUCER_REGS) // 3)
