"""Hopper backward for head dims 129-256 (Gluon, warp-specialized): ``flash_bwd_sm90``'s one pass
where its layout does not fit. There a consumer holds dK and dV of its 64 keys over all dims in
registers (256 fp32 registers a thread at head dim 256: too many), and a program holds K and V of
128 keys beside its Q / dO ring (256 KB at head dim 256: more than the SM's 227 KB).

Here a program takes one of the same work items (a key tile of 128 keys of one (batch, KV head),
numbered in ``flash_bwd_sm90.column_section``'s L2 sections; never a persistent grid, see
``backward_wide``), the key tile as two halves of 64 keys, one after the other:

* the producer (``flash_bwd_sm90._bwd_producer`` with ``KEY_PASSES=2``) loads a half's K and V
  (64 keys x 256 dims each) once, then streams 64-row blocks of Q and dO with their lse and delta
  through a 2-stage ring, walking the key tile's column once per half;
* both consumers compute the same S^T = K Q^T and dP^T = V dO^T over all dims (64 keys x 64 query
  rows), then P^T and dS^T; consumer w owns dims [128 w, 128 w + 128): dV[:, dims] += P^T dO[:, dims],
  dK[:, dims] += dS^T Q[:, dims] (128 fp32 registers for both) and dQ[:, dims] = dS K[:, dims], 32
  dims at a time, each chunk added into the fp32 accumulator by a TMA reduce-add from a 8 KB
  staging buffer. Each consumer keeps its own copy of dS^T in shared memory for its dQ products,
  so the two never wait for each other. That is 7 products' worth of tensor-core work where 5
  are needed (S and dP twice), and, with 64 keys a program, twice ``flash_bwd_sm90``'s dQ reduce
  traffic per unit of work;
* dK and dV leave from registers at the end of a half, written as given (any strides).

Shared memory: K and V 64 KB, the ring 2 x 64 KB, the dS^T copies 16 KB, the dQ staging 16 KB:
224 KB of the 227 KB a program may take.

Used on sm_90 for fp16/bf16, padded head dims 129-256 (zero-padded to 256 in shared memory), on
the maps ``flash_bwd_sm90`` takes (``flash_bwd_sm90.map_supported``); not bitwise reproducible
(the order of the reduce-adds varies), so ``deterministic`` takes the portable kernels.
"""
from __future__ import annotations

import functools

import torch

from ..block_map import BlockMap
from . import flash_bwd_sm90
from .column_bitmaps import column_bitmaps
from .config import sm_count
from .sm90_common import HAVE_GLUON, smem_layout

if HAVE_GLUON:
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl
    from triton.experimental.gluon.language.nvidia.hopper import (
        fence_async_shared, mbarrier, tma, warpgroup_mma, warpgroup_mma_wait)

    from .flash_bwd_sm90 import (HALF, _block_grads, _bwd_producer, _column, _key_tile, _operand_descs,
                                 _tma_reduce_add)
    from .sm90_common import signal, zero_non_finite
    from .sm90_schedule import listed_items

ENABLED = True
BLOCK_D = 256  # head dims 129-256, zero-padded in shared memory
STAGES = 2  # Q / dO blocks in the ring (64 KB each)
_CONSUMER_REGS, _PRODUCER_REGS = 240, 24

if HAVE_GLUON:
    DQ_DIMS = gl.constexpr(32)  # dQ dims per product and reduce-add (a consumer's 128 in four)

    @gluon.jit
    def _wide_block(FULL: gl.constexpr, WG: gl.constexpr, kp, j, it, b, h, f0, nf, p0, dk, dv, q_buf, do_buf, kb,
                    vb, kw, ds_buf, dq_buf, lse_buf, delta_buf, qd_ready, qd_empty, dqa_desc, COL_BITS, T_FULL_IDX,
                    T_PART_IDX, Lq, c, scale, S_LAYOUT: gl.constexpr, A_LAYOUT: gl.constexpr,
                    O_LAYOUT: gl.constexpr, DQ_LAYOUT: gl.constexpr, TILE_Q: gl.constexpr, TILE_K: gl.constexpr,
                    BLOCK_D: gl.constexpr):
        """Query block j of the column (the ``it``-th block of this program) against key half
        ``kp`` -> this consumer's dims of dK, dV (returned) and dQ (added by TMA reduce-adds)."""
        DW: gl.constexpr = BLOCK_D // 2  # dims per consumer
        DQ_N: gl.constexpr = DQ_LAYOUT.instr_shape[1]  # dQ dims per product
        dtype: gl.constexpr = q_buf.dtype
        p, ds, m0, s = _block_grads(FULL, j, it, kp * HALF, f0, nf, p0, kb, vb, q_buf, do_buf, lse_buf, delta_buf,
                                    qd_ready, COL_BITS, T_FULL_IDX, T_PART_IDX, Lq, c, S_LAYOUT, TILE_Q, TILE_K,
                                    BLOCK_D)
        qb = q_buf.index(s).reshape([HALF, BLOCK_D])
        dob = do_buf.index(s).reshape([HALF, BLOCK_D])
        dv_tok = warpgroup_mma(gl.convert_layout(p.to(dtype), A_LAYOUT), dob.slice(WG * DW, DW, dim=1), dv,
                               is_async=True)
        dk_tok = warpgroup_mma(gl.convert_layout(ds, A_LAYOUT), qb.slice(WG * DW, DW, dim=1), dk, is_async=True)
        # dQ[:, dims] = dS K[:, dims]: dS^T through this consumer's own shared-memory copy (its
        # previous dQ product, which read it, was waited for at the end of the previous block)
        dsb = ds_buf.index(WG)
        dsb.store(ds)
        fence_async_shared()
        gl.thread_barrier()  # the whole warpgroup's part stored before the product reads it
        # in chunks of DQ_N dims, each added into the accumulator by one TMA reduce-add from this
        # consumer's staging buffer (its accumulator lives only until then; the chunk's product
        # runs while the previous chunk's reduce reads the buffer)
        for ch in gl.static_range(DW // DQ_N):
            dq_tok = warpgroup_mma(dsb.permute((1, 0)), kw.slice(ch * DQ_N, DQ_N, dim=1),
                                   gl.zeros([HALF, DQ_N], gl.float32, layout=DQ_LAYOUT), use_acc=False, is_async=True)
            if ch == 0:
                dv, dk, dq = warpgroup_mma_wait(0, deps=[dv_tok, dk_tok, dq_tok])
                signal(qd_empty.index(s), True)  # Q, dO, lse and delta of this slot are read
            else:
                dq = warpgroup_mma_wait(0, deps=[dq_tok])
            tma.store_wait(0)  # the previous reduce has read the buffer
            dq_buf.index(WG).reshape([HALF, DQ_N]).store(dq * scale)
            fence_async_shared()
            gl.thread_barrier()
            _tma_reduce_add(dqa_desc, [b, h, m0, WG * DW + ch * DQ_N], dq_buf.index(WG))
        return dk, dv

    @gluon.jit
    def _store_half(OUT, x, b, kvh, n0, sb, sh, sn, Lk, D, WG: gl.constexpr, LAYOUT: gl.constexpr):
        """This consumer's dims of dK or dV for keys [n0, n0 + 64) -> OUT (B, Hkv, Lk, D), any strides."""
        DW: gl.constexpr = x.shape[1]
        keys = n0 + gl.arange(0, HALF, layout=gl.SliceLayout(1, LAYOUT))
        cols = WG * DW + gl.arange(0, DW, layout=gl.SliceLayout(0, LAYOUT))
        at = b.to(gl.int64) * sb + kvh.to(gl.int64) * sh + keys[:, None].to(gl.int64) * sn + cols[None, :]
        gl.store(OUT + at, x.to(OUT.dtype.element_ty), mask=(keys < Lk)[:, None] & (cols < D)[None, :])

    @gluon.jit
    def _wide_consumer(WG: gl.constexpr, q_buf, do_buf, k_buf, v_buf, ds_buf, dq_buf, lse_buf, delta_buf, kv_ready,
                       kv_empty, qd_ready, qd_empty, DK, DV, dqa_desc, sdkb, sdkh, sdkn, sdvb, sdvh, sdvn, COL_BITS,
                       PROG_PTR, PROG_ITEMS, n_bk, section, Hq, Hkv, GROUP, map_sb, map_sh, n_kt, K_ORDER,
                       T_FULL_PTR, T_FULL_IDX, T_PART_PTR, T_PART_IDX, Lq, Lk, D, D_TMA, c, scale, TILE_Q: gl.constexpr,
                       TILE_K: gl.constexpr, BLOCK_D: gl.constexpr):
        SUB_M: gl.constexpr = TILE_Q // HALF
        DW: gl.constexpr = BLOCK_D // 2
        S_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                           instr_shape=[16, HALF, 16])
        O_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                           instr_shape=[16, DW, 16])
        A_LAYOUT: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=O_LAYOUT, k_width=2)
        DQ_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                            instr_shape=[16, DQ_DIMS, 16])
        kb = k_buf.index(0).reshape([HALF, BLOCK_D])
        vb = v_buf.index(0).reshape([HALF, BLOCK_D])
        kw = kb.slice(WG * DW, DW, dim=1)  # K[:, this consumer's dims], the dQ product's B
        it = 0
        ki = 0
        first, count = listed_items(PROG_PTR)
        for r in range(count):
            b, kvh, kt = _key_tile(gl.load(PROG_ITEMS + first + r), n_bk, section, Hkv, GROUP, map_sb, map_sh, n_kt,
                                   K_ORDER)
            for kp in range(2):  # the key tile's two 64-key halves, as the producer loads them
                dk = gl.zeros([HALF, DW], gl.float32, layout=O_LAYOUT)
                dv = gl.zeros([HALF, DW], gl.float32, layout=O_LAYOUT)
                mbarrier.wait(kv_ready, ki & 1)
                ki += 1
                zero_non_finite(kw)  # see flash_bwd_sm90's docstring
                for hg in range(GROUP):
                    h = kvh * GROUP + hg
                    f0, nf, p0, n = _column(b, h, kt, map_sb, map_sh, n_kt, T_FULL_PTR, T_PART_PTR, SUB_M)
                    for kind in gl.static_range(2):  # full blocks [0, nf), then partial ones [nf, n)
                        if kind == 0:
                            start, stop = 0, nf
                        else:
                            start, stop = nf, n
                        for j in range(start, stop):
                            dk, dv = _wide_block(kind == 0, WG, kp, j, it, b, h, f0, nf, p0, dk, dv, q_buf, do_buf,
                                                 kb, vb, kw, ds_buf, dq_buf, lse_buf, delta_buf, qd_ready, qd_empty,
                                                 dqa_desc, COL_BITS, T_FULL_IDX, T_PART_IDX, Lq, c, scale, S_LAYOUT,
                                                 A_LAYOUT, O_LAYOUT, DQ_LAYOUT, TILE_Q, TILE_K, BLOCK_D)
                            it += 1
                mbarrier.arrive(kv_empty, count=1)  # every product reading K / V of this half is done
                n0 = kt * TILE_K + kp * HALF
                _store_half(DK, dk * scale, b, kvh, n0, sdkb, sdkh, sdkn, Lk, D, WG, O_LAYOUT)
                _store_half(DV, dv, b, kvh, n0, sdvb, sdvh, sdvn, Lk, D, WG, O_LAYOUT)
        tma.store_wait(0)  # shared memory outlives the last reduce's read

    @gluon.jit
    def _attn_bwd_wide(
        Q, K, V, DO, LSE, DELTA, DK, DV, DQA,
        T_FULL_PTR, T_FULL_IDX, T_PART_PTR, T_PART_IDX, COL_BITS, K_ORDER, PROG_PTR, PROG_ITEMS,
        sqb, sqh, sqm, skb, skh, skn, svb, svh, svn, sdb, sdh, sdm, sdkb, sdkh, sdkn, sdvb, sdvh, sdvn,
        B, Hq, Hkv, GROUP, Lq, Lq_stat, Lk, D, D_TMA, map_sb, map_sh, n_kt, section, scale,
        SMEM: gl.constexpr, DS_SMEM: gl.constexpr, DQ_SMEM: gl.constexpr, STAT_SMEM: gl.constexpr, TILE_Q: gl.constexpr,
        TILE_K: gl.constexpr, BLOCK_D: gl.constexpr, NUM_STAGES: gl.constexpr, CONSUMER_REGS: gl.constexpr,
    ):
        dtype: gl.constexpr = Q.dtype.element_ty
        q_desc, do_desc, k_desc, v_desc, lse_desc, delta_desc = _operand_descs(
            Q, K, V, DO, LSE, DELTA, sqb, sqh, sqm, skb, skh, skn, svb, svh, svn, sdb, sdh, sdm, B, Hq, Hkv, Lq,
            Lq_stat, Lk, D_TMA, SMEM, STAT_SMEM, BLOCK_D)
        # dQ accumulator (B, Hq, Lq, D_TMA) fp32, contiguous, added to DQ_DIMS dims at a time
        dqa_desc = tma.make_tensor_descriptor(DQA, shape=[B, Hq, Lq, D_TMA], strides=[Hq * Lq * D_TMA, Lq * D_TMA,
                                              D_TMA, 1], block_shape=[1, 1, HALF, DQ_DIMS], layout=DQ_SMEM)
        lse_buf = gl.allocate_shared_memory(gl.float32, [NUM_STAGES, HALF], STAT_SMEM)
        delta_buf = gl.allocate_shared_memory(gl.float32, [NUM_STAGES, HALF], STAT_SMEM)
        k_buf = gl.allocate_shared_memory(dtype, [1, 1, 1, HALF, BLOCK_D], SMEM)
        v_buf = gl.allocate_shared_memory(dtype, [1, 1, 1, HALF, BLOCK_D], SMEM)
        q_buf = gl.allocate_shared_memory(dtype, [NUM_STAGES, 1, 1, HALF, BLOCK_D], SMEM)
        do_buf = gl.allocate_shared_memory(dtype, [NUM_STAGES, 1, 1, HALF, BLOCK_D], SMEM)
        ds_buf = gl.allocate_shared_memory(dtype, [2, HALF, HALF], DS_SMEM)  # each consumer's dS^T
        dq_buf = gl.allocate_shared_memory(gl.float32, [2, 1, 1, HALF, DQ_DIMS], DQ_SMEM)  # each one's dQ chunk
        kv_ready = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
        kv_empty = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
        qd_ready = gl.allocate_shared_memory(gl.int64, [NUM_STAGES, 1], mbarrier.MBarrierLayout())
        qd_empty = gl.allocate_shared_memory(gl.int64, [NUM_STAGES, 1], mbarrier.MBarrierLayout())
        mbarrier.init(kv_ready, count=1)
        mbarrier.init(kv_empty, count=2)  # released by both consumers
        for i in gl.static_range(NUM_STAGES):
            mbarrier.init(qd_ready.index(i), count=1)
            mbarrier.init(qd_empty.index(i), count=2 * 128)  # every thread of both consumers (``signal``)
        n_bk = B * Hkv
        c = scale * 1.4426950408889634
        gl.warp_specialize([
            (_bwd_producer, (q_desc, do_desc, k_desc, v_desc, lse_desc, delta_desc, q_buf, do_buf, k_buf, v_buf,
                             lse_buf, delta_buf, kv_ready, kv_empty, qd_ready, qd_empty, PROG_PTR, PROG_ITEMS, n_bk,
                             section, Hq, Hkv, GROUP, Lq_stat, map_sb, map_sh, n_kt, K_ORDER, T_FULL_PTR, T_FULL_IDX,
                             T_PART_PTR, T_PART_IDX, PROG_ITEMS, TILE_Q, TILE_K, 2, False)),
            (_wide_consumer, (0, q_buf, do_buf, k_buf, v_buf, ds_buf, dq_buf, lse_buf, delta_buf, kv_ready,
                              kv_empty, qd_ready, qd_empty, DK, DV, dqa_desc, sdkb, sdkh, sdkn, sdvb, sdvh, sdvn,
                              COL_BITS, PROG_PTR, PROG_ITEMS, n_bk, section, Hq, Hkv, GROUP, map_sb, map_sh, n_kt,
                              K_ORDER, T_FULL_PTR, T_FULL_IDX, T_PART_PTR, T_PART_IDX, Lq, Lk, D, D_TMA, c, scale,
                              TILE_Q, TILE_K, BLOCK_D)),
            (_wide_consumer, (1, q_buf, do_buf, k_buf, v_buf, ds_buf, dq_buf, lse_buf, delta_buf, kv_ready,
                              kv_empty, qd_ready, qd_empty, DK, DV, dqa_desc, sdkb, sdkh, sdkn, sdvb, sdvh, sdvn,
                              COL_BITS, PROG_PTR, PROG_ITEMS, n_bk, section, Hq, Hkv, GROUP, map_sb, map_sh, n_kt,
                              K_ORDER, T_FULL_PTR, T_FULL_IDX, T_PART_PTR, T_PART_IDX, Lq, Lk, D, D_TMA, c, scale,
                              TILE_Q, TILE_K, BLOCK_D)),
        ], [4, 4], [CONSUMER_REGS, CONSUMER_REGS])


@functools.lru_cache(maxsize=None)
def _dq_layout():
    """A consumer's dQ chunk before its reduce-add: 64 rows x 32 dims, fp32."""
    return gl.NVMMASharedLayout.get_default_for([1, 1, 64, 32], gl.float32)


def supported(q: torch.Tensor, bm: BlockMap, d_tma: int, softcap, kv_heads: int) -> bool:
    """Can this kernel run the backward? Padded head dims 129-256 on the maps and inputs
    ``flash_bwd_sm90`` takes (``flash_bwd_sm90.map_supported``) that are not bound by their busiest
    column (``flash_bwd_sm90.column_bound``: this kernel does not cut key tiles into parts)."""
    if not (ENABLED and 128 < d_tma <= BLOCK_D and flash_bwd_sm90.map_supported(q, bm, d_tma, softcap, kv_heads)):
        return False
    b, hq = q.shape[:2]
    return not flash_bwd_sm90.column_bound(bm, b * hq, hq // kv_heads)


def backward_wide(q, k, v, do, lse, delta, dk, dv, dq_acc, bm: BlockMap, scale: float, d: int, d_tma: int,
                  map_sb: int, map_sh: int):
    """As ``flash_bwd_sm90.backward_sm90`` (same arguments and preparation): writes dk, dv
    (B, Hkv, Lk, d), any strides, and adds dQ into dq_acc (B, Hq, Lq, d_tma) fp32. Returns the
    launch as (compiled, grid, args, constexprs) for ``relaunch.Relaunch`` (slots 0-8 as there)."""
    b, hq, lq, _ = q.shape
    hkv, lk = k.shape[1], k.shape[2]
    group = hq // hkv
    # one program per key tile, numbered in L2 sections, also where the head-dim-128 kernel takes a
    # persistent grid (short columns): H100, session 30 (``session30/ab_wide_grid.log``), per key
    # tile against persistent lists at head dim 256: causal 8k 1.47x, causal 4k 1.22x, sliding /
    # documents 8k 1.01x / 0.98x; causal 16k (one program per key tile before too): lists 1.05x, kept alike
    n_items = b * hkv * bm.n_k_tiles
    grid = (n_items,)
    prog_ptr, prog_items = flash_bwd_sm90.program_lists(bm, b, hkv, group, map_sb, map_sh, n_items)
    section = flash_bwd_sm90.column_section(bm, b, hkv, group, lq, d_tma, q.element_size(), sm_count(q.device))
    args = (q, k, v, do, lse, delta, dk, dv, dq_acc,
            bm.t_full_ptr, bm.t_full_idx, bm.t_part_ptr, bm.t_part_idx, column_bitmaps(bm), bm.k_order,
            prog_ptr, prog_items,
            *q.stride()[:3], *k.stride()[:3], *v.stride()[:3], *do.stride()[:3], *dk.stride()[:3],
            *dv.stride()[:3], b, hq, hkv, group, lq, lse.shape[-1], lk, d, d_tma, map_sb, map_sh, bm.n_k_tiles,
            section, scale)
    constexprs = dict(SMEM=smem_layout((1, 1, 64, BLOCK_D), q.dtype), DS_SMEM=smem_layout((64, 64), q.dtype),
                      DQ_SMEM=_dq_layout(), STAT_SMEM=flash_bwd_sm90._stat_layout(), TILE_Q=bm.block_q,
                      TILE_K=bm.block_k,
                      BLOCK_D=BLOCK_D, NUM_STAGES=STAGES, CONSUMER_REGS=_CONSUMER_REGS)
    compiled = _attn_bwd_wide[grid](*args, **constexprs, num_warps=4,
                                    maxnreg=(2 * _CONSUMER_REGS + _PRODUCER_REGS) // 3)
    return compiled, grid, args, constexprs, None  # never cut key tiles (``supported``)
