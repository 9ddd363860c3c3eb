"""Hopper forward kernel (Gluon, warp-specialized): flash attention over a BlockMap with
FlashAttention-3's schedule.

The portable kernel (``forward.py``) leaves the order of its matrix products to Triton,
which waits for every product before the softmax that follows, so exp2 and the row
statistics never overlap the tensor cores inside a program (ncu, session 6). One program
here is one 128-row slice of a query tile, run by three warpgroups that each do one job:

* **producer** (the default partition, few registers): TMA loads of Q, then of each key
  block's K and V into a ring of ``STAGES`` buffers, each refilled as soon as both
  consumers have released it (mbarriers, no CTA-wide barrier). On partial tiles it also
  cleans V of non-finite entries in shared memory before handing it over, so a NaN in an
  unwritten cache slot cannot leak into rows that may not see it through ``0 * NaN``.
* **two consumers** (64 query rows each): per key block, S_j = Q K_j^T and O += P_{j-1} V_{j-1}
  are issued back to back (async wgmma), the softmax of S_j then runs while P_{j-1} V_{j-1}
  is still on the tensor cores (intra-warpgroup overlap), and the two consumers take turns
  issuing their products (a pair of mbarriers: inter-warpgroup ping-pong), so one's softmax
  runs under the other's matrix products.

A work item walks its query tile's full key tiles (no mask arithmetic), then its partial
ones (bitmap bits; masked scores are -inf through ``where``, so a NaN key is harmless).
Items are numbered heaviest first as in the portable kernel. Used on sm_90 for fp16/bf16,
padded head dims up to 128, no softcap, maps with query tiles of a multiple of 128 rows and
key tiles of at least 64 (``supported``); everything else, and the CPU interpreter, runs the
portable kernel.
"""
from __future__ import annotations

import functools

import torch

from ..block_map import BlockMap

try:  # Gluon is Triton's lower-level frontend (warp specialization on Hopper: Triton >= 3.5)
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl
    from triton.experimental.gluon.language.nvidia.hopper import (
        fence_async_shared, mbarrier, tma, warpgroup_mma, warpgroup_mma_wait)
    HAVE_GLUON = hasattr(gl, "warp_specialize")
except ImportError:  # pragma: no cover - older Triton
    HAVE_GLUON = False

ENABLED = True
STAGES = 2  # K/V buffers in the ring
_CONSUMER_REGS, _PRODUCER_REGS = 232, 40  # per thread; 3 warpgroups share the 64K registers of the SM

if HAVE_GLUON:
    HALF_M = gl.constexpr(64)  # query rows per consumer warpgroup

    @gluon.jit
    def _key_block(j, nf, f0, p0, FULL_IDX, PART_IDX, TILE_K: gl.constexpr, SUB_N: gl.constexpr,
                   BLOCK_N: gl.constexpr):
        """Flattened block j of a row (full tiles first, then partial) -> its first key."""
        if j < nf:
            t = gl.load(FULL_IDX + f0 + j // SUB_N)
        else:
            t = gl.load(PART_IDX + p0 + (j - nf) // SUB_N)
        return t * TILE_K + (j % SUB_N) * BLOCK_N

    @gluon.jit
    def _clean_block(buf, BLOCK_N: gl.constexpr, BLOCK_D: gl.constexpr):
        """Non-finite entries of a V block in shared memory -> 0, 16 rows at a time (the
        producer has few registers), then made visible to the tensor cores."""
        layout: gl.constexpr = gl.BlockedLayout([1, 8], [4, 8], [gl.num_warps(), 1], [1, 0])
        for r in gl.static_range(0, BLOCK_N, 16):
            part = buf.slice(r, 16)
            x = part.load(layout)
            part.store(gl.where(gl.abs(x) < float("inf"), x, gl.zeros_like(x)))
        fence_async_shared()

    @gluon.jit
    def _producer(q_desc, k_desc, v_desc, q_buf, k_buf, v_buf, q_bar, k_ready, k_empty, v_ready, v_empty, v_land,
                  m0, n, nf, f0, p0, FULL_IDX, PART_IDX, TILE_K: gl.constexpr, BLOCK_N: gl.constexpr,
                  BLOCK_D: gl.constexpr):
        SUB_N: gl.constexpr = TILE_K // BLOCK_N
        NUM: gl.constexpr = k_buf.type.shape[0]
        nbytes: gl.constexpr = k_desc.block_type.nbytes
        if n > 0:
            mbarrier.expect(q_bar, 2 * q_desc.block_type.nbytes)
            tma.async_copy_global_to_shared(q_desc, [m0, 0], q_bar, q_buf.index(0))
            tma.async_copy_global_to_shared(q_desc, [m0 + HALF_M, 0], q_bar, q_buf.index(1))
        for j in range(n):
            s = j % NUM
            ph = (j // NUM) & 1
            n0 = _key_block(j, nf, f0, p0, FULL_IDX, PART_IDX, TILE_K, SUB_N, BLOCK_N)
            # a fresh mbarrier counts as having completed the phase before 0: the first
            # round passes at once
            mbarrier.wait(k_empty.index(s), ph ^ 1)
            mbarrier.expect(k_ready.index(s), nbytes)
            tma.async_copy_global_to_shared(k_desc, [n0, 0], k_ready.index(s), k_buf.index(s))
            mbarrier.wait(v_empty.index(s), ph ^ 1)
            if j < nf:
                mbarrier.expect(v_ready.index(s), nbytes)
                tma.async_copy_global_to_shared(v_desc, [n0, 0], v_ready.index(s), v_buf.index(s))
            else:  # partial tile: land, clean, then hand over
                mbarrier.expect(v_land, nbytes)
                tma.async_copy_global_to_shared(v_desc, [n0, 0], v_land, v_buf.index(s))
                mbarrier.wait(v_land, (j - nf) & 1)
                _clean_block(v_buf.index(s), BLOCK_N, BLOCK_D)
                mbarrier.arrive(v_ready.index(s), count=1)

    @gluon.jit
    def _block_bits(BITMAPS, slot, row0, c0, S_LAYOUT: gl.constexpr, BLOCK_M: gl.constexpr,
                    BLOCK_N: gl.constexpr, TILE_Q: gl.constexpr, TILE_K: gl.constexpr):
        """Bits of rows [row0, row0+BLOCK_M) x columns [c0, c0+BLOCK_N) of partial tile ``slot``
        (coordinates inside the tile) in the score layout: one 32-bit word load per (row, word),
        broadcast along the row."""
        WORDS: gl.constexpr = TILE_K // 32
        N_WORDS: gl.constexpr = (BLOCK_N + 31) // 32
        rows = row0 + gl.arange(0, BLOCK_M, layout=gl.SliceLayout(1, S_LAYOUT))
        cols = c0 + gl.arange(0, BLOCK_N, layout=gl.SliceLayout(0, S_LAYOUT))
        base = BITMAPS + slot.to(gl.int64) * (TILE_Q * WORDS) + rows * WORDS + c0 // 32
        word_of_col = cols // 32 - c0 // 32
        shift = (cols % 32)[None, :]
        bits = (gl.load(base)[:, None] >> shift) & 1
        for w in gl.static_range(1, N_WORDS):
            bits = gl.where((word_of_col == w)[None, :], (gl.load(base + w)[:, None] >> shift) & 1, bits)
        return bits != 0

    @gluon.jit
    def _softmax_block(s, m_i, l_i, allowed, c, MASKED: gl.constexpr, NEG_SCALE: gl.constexpr):
        """One online-softmax step on raw scores s = q.k (M, N): -> p, alpha, new m, new l (log2 units)."""
        if MASKED:
            s = gl.where(allowed, s * c, float("-inf"))
            m_new = gl.maximum(m_i, gl.max(s, 1))
            m_use = gl.where(m_new == float("-inf"), 0.0, m_new)  # nothing allowed yet: no NaN
            p = gl.exp2(s - m_use[:, None])
        else:  # scale folded into one multiply-add (row max of s * c is c * row max, c > 0)
            if NEG_SCALE:
                m_new = gl.maximum(m_i, gl.min(s, 1) * c)
            else:
                m_new = gl.maximum(m_i, gl.max(s, 1) * c)
            m_use = m_new
            p = gl.exp2(s * c - m_use[:, None])
        alpha = gl.exp2(m_i - m_use)
        l_i = l_i * alpha + gl.sum(p, 1)
        return p, alpha, m_new, l_i

    @gluon.jit
    def _softmax_of(j, s, m_i, l_i, nf, p0, BITMAPS, row0, c, S_LAYOUT: gl.constexpr, P_LAYOUT: gl.constexpr,
                    TILE_Q: gl.constexpr, TILE_K: gl.constexpr, BLOCK_N: gl.constexpr,
                    NEG_SCALE: gl.constexpr, DTYPE: gl.constexpr):
        """Softmax step of key block j on its raw scores s -> (P_j as the A operand, alpha, m, l)."""
        SUB_N: gl.constexpr = TILE_K // BLOCK_N
        if j < nf:
            p, alpha, m_i, l_i = _softmax_block(s, m_i, l_i, None, c, False, NEG_SCALE)
        else:
            jp = j - nf
            allowed = _block_bits(BITMAPS, p0 + jp // SUB_N, row0, (jp % SUB_N) * BLOCK_N, S_LAYOUT,
                                  HALF_M, BLOCK_N, TILE_Q, TILE_K)
            p, alpha, m_i, l_i = _softmax_block(s, m_i, l_i, allowed, c, True, NEG_SCALE)
        return gl.convert_layout(p.to(DTYPE), P_LAYOUT), alpha, m_i, l_i

    @gluon.jit
    def _consumer(WG: gl.constexpr, q_desc, k_desc, v_desc, q_buf, k_buf, v_buf, q_bar, k_ready, k_empty, v_ready,
                  v_empty, turn, O, LSE, BITMAPS, bh, b, h, sob, soh, som, m0, row0, n, nf, p0, Lq, D, c,
                  TILE_Q: gl.constexpr, TILE_K: gl.constexpr, BLOCK_N: gl.constexpr, BLOCK_D: gl.constexpr,
                  NEG_SCALE: gl.constexpr):
        NUM: gl.constexpr = k_buf.type.shape[0]
        S_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                           instr_shape=[16, BLOCK_N, 16])
        O_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                           instr_shape=[16, BLOCK_D, 16])
        P_LAYOUT: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=O_LAYOUT, k_width=2)
        dtype: gl.constexpr = q_buf.dtype
        m0 = m0 + WG * HALF_M
        row0 = row0 + WG * HALF_M
        m_i = gl.full([HALF_M], float("-inf"), gl.float32, layout=gl.SliceLayout(1, S_LAYOUT))
        l_i = gl.zeros([HALF_M], gl.float32, layout=gl.SliceLayout(1, S_LAYOUT))
        o = gl.zeros([HALF_M, BLOCK_D], gl.float32, layout=O_LAYOUT)
        s_zero = gl.zeros([HALF_M, BLOCK_N], gl.float32, layout=S_LAYOUT)
        my_turn = turn.index(WG)
        their_turn = turn.index(1 - WG)
        t_phase = 1 - WG  # consumer 0 issues first (a fresh mbarrier passes a parity-1 wait)
        if n > 0:
            qb = q_buf.index(WG)
            mbarrier.wait(q_bar, 0)
            mbarrier.wait(k_ready.index(0), 0)
            mbarrier.wait(my_turn, t_phase)
            t_phase ^= 1
            s_tok = warpgroup_mma(qb, k_buf.index(0).permute((1, 0)), s_zero, use_acc=False, is_async=True)
            mbarrier.arrive(their_turn, count=1)
            s = warpgroup_mma_wait(0, deps=[s_tok])
            mbarrier.arrive(k_empty.index(0), count=1)
            p, alpha, m_i, l_i = _softmax_of(0, s, m_i, l_i, nf, p0, BITMAPS, row0, c, S_LAYOUT, P_LAYOUT,
                                             TILE_Q, TILE_K, BLOCK_N, NEG_SCALE, dtype)
            for j in range(1, n):
                ks = j % NUM
                vs = (j - 1) % NUM
                mbarrier.wait(k_ready.index(ks), (j // NUM) & 1)
                mbarrier.wait(my_turn, t_phase)
                t_phase ^= 1
                s_tok = warpgroup_mma(qb, k_buf.index(ks).permute((1, 0)), s_zero, use_acc=False, is_async=True)
                o = o * gl.convert_layout(alpha, gl.SliceLayout(1, O_LAYOUT))[:, None]
                mbarrier.wait(v_ready.index(vs), ((j - 1) // NUM) & 1)
                o_tok = warpgroup_mma(p, v_buf.index(vs), o, is_async=True)
                mbarrier.arrive(their_turn, count=1)
                s = warpgroup_mma_wait(1, deps=[s_tok])  # S_j done; P_{j-1} V_{j-1} may still run
                mbarrier.arrive(k_empty.index(ks), count=1)
                p, alpha, m_i, l_i = _softmax_of(j, s, m_i, l_i, nf, p0, BITMAPS, row0, c, S_LAYOUT, P_LAYOUT,
                                                 TILE_Q, TILE_K, BLOCK_N, NEG_SCALE, dtype)
                o = warpgroup_mma_wait(0, deps=[o_tok])
                mbarrier.arrive(v_empty.index(vs), count=1)
            vs = (n - 1) % NUM
            o = o * gl.convert_layout(alpha, gl.SliceLayout(1, O_LAYOUT))[:, None]
            mbarrier.wait(v_ready.index(vs), ((n - 1) // NUM) & 1)
            o_tok = warpgroup_mma(p, v_buf.index(vs), o, is_async=True)
            o = warpgroup_mma_wait(0, deps=[o_tok])
            mbarrier.arrive(v_empty.index(vs), count=1)

        # fully masked rows: l = 0 -> out 0, lse -inf (never NaN)
        l_safe = gl.where(l_i == 0.0, 1.0, l_i)
        lse = gl.where(l_i == 0.0, float("-inf"), (m_i + gl.log2(l_safe)) * 0.6931471805599453)
        out = o / gl.convert_layout(l_safe, gl.SliceLayout(1, O_LAYOUT))[:, None]
        offs_m = m0 + gl.arange(0, HALF_M, layout=gl.SliceLayout(1, O_LAYOUT))
        offs_d = gl.arange(0, BLOCK_D, layout=gl.SliceLayout(0, O_LAYOUT))
        gl.store(O + b.to(gl.int64) * sob + h.to(gl.int64) * soh + offs_m[:, None].to(gl.int64) * som
                 + offs_d[None, :], out.to(dtype), mask=(offs_m < Lq)[:, None] & (offs_d[None, :] < D))
        offs_l = m0 + gl.arange(0, HALF_M, layout=gl.SliceLayout(1, S_LAYOUT))
        gl.store(LSE + bh.to(gl.int64) * Lq + offs_l, lse, mask=offs_l < Lq)

    @gluon.jit
    def _attn_fwd_sm90(
        Q, K, V, O, LSE,
        FULL_PTR, FULL_IDX, PART_PTR, PART_IDX, BITMAPS, Q_ORDER,
        sqb, sqh, sqm, skb, skh, skn, svb, svh, svn, sob, soh, som,
        H, GROUP, Lq, Lk, D, D_TMA, map_sb, map_sh, n_qt, n_bh, scale,
        Q_SMEM: gl.constexpr, KV_SMEM: gl.constexpr, TILE_Q: gl.constexpr, TILE_K: gl.constexpr,
        BLOCK_N: gl.constexpr, BLOCK_D: gl.constexpr, NUM_STAGES: gl.constexpr, NEG_SCALE: gl.constexpr,
        CONSUMER_REGS: gl.constexpr,
    ):
        SUB_M: gl.constexpr = TILE_Q // (2 * HALF_M)
        SUB_N: gl.constexpr = TILE_K // BLOCK_N
        dtype: gl.constexpr = Q.dtype.element_ty
        item = gl.program_id(0)
        bh = item % n_bh  # rank-major numbering: every head's heaviest rows come first
        rank = item // n_bh
        b = bh // H
        h = bh % H
        g = b * map_sb + h * map_sh
        qt = gl.load(Q_ORDER + g * n_qt + rank // SUB_M)
        m0 = qt * TILE_Q + (rank % SUB_M) * (2 * HALF_M)
        row = g * n_qt + qt
        kvh = h // GROUP
        f0 = gl.load(FULL_PTR + row)
        nf = (gl.load(FULL_PTR + row + 1) - f0) * SUB_N
        p0 = gl.load(PART_PTR + row)
        n = nf + (gl.load(PART_PTR + row + 1) - p0) * SUB_N

        q_desc = tma.make_tensor_descriptor(Q + b.to(gl.int64) * sqb + h.to(gl.int64) * sqh, shape=[Lq, D_TMA],
                                            strides=[sqm, 1], block_shape=[HALF_M, BLOCK_D], layout=Q_SMEM)
        k_desc = tma.make_tensor_descriptor(K + b.to(gl.int64) * skb + kvh.to(gl.int64) * skh, shape=[Lk, D_TMA],
                                            strides=[skn, 1], block_shape=[BLOCK_N, BLOCK_D], layout=KV_SMEM)
        v_desc = tma.make_tensor_descriptor(V + b.to(gl.int64) * svb + kvh.to(gl.int64) * svh, shape=[Lk, D_TMA],
                                            strides=[svn, 1], block_shape=[BLOCK_N, BLOCK_D], layout=KV_SMEM)
        q_buf = gl.allocate_shared_memory(dtype, [2, HALF_M, BLOCK_D], Q_SMEM)
        k_buf = gl.allocate_shared_memory(dtype, [NUM_STAGES, BLOCK_N, BLOCK_D], KV_SMEM)
        v_buf = gl.allocate_shared_memory(dtype, [NUM_STAGES, BLOCK_N, BLOCK_D], KV_SMEM)
        q_bar = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
        v_land = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
        k_ready = gl.allocate_shared_memory(gl.int64, [NUM_STAGES, 1], mbarrier.MBarrierLayout())
        v_ready = gl.allocate_shared_memory(gl.int64, [NUM_STAGES, 1], mbarrier.MBarrierLayout())
        k_empty = gl.allocate_shared_memory(gl.int64, [NUM_STAGES, 1], mbarrier.MBarrierLayout())
        v_empty = gl.allocate_shared_memory(gl.int64, [NUM_STAGES, 1], mbarrier.MBarrierLayout())
        turn = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
        mbarrier.init(q_bar, count=1)
        mbarrier.init(v_land, count=1)
        for i in gl.static_range(NUM_STAGES):
            mbarrier.init(k_ready.index(i), count=1)
            mbarrier.init(v_ready.index(i), count=1)
            mbarrier.init(k_empty.index(i), count=2)  # released by both consumers
            mbarrier.init(v_empty.index(i), count=2)
        for i in gl.static_range(2):
            mbarrier.init(turn.index(i), count=1)

        c = scale * 1.4426950408889634
        row0 = m0 - qt * TILE_Q  # first row inside the query tile (bitmap coordinates)
        gl.warp_specialize([
            (_producer, (q_desc, k_desc, v_desc, q_buf, k_buf, v_buf, q_bar, k_ready, k_empty, v_ready, v_empty,
                         v_land, m0, n, nf, f0, p0, FULL_IDX, PART_IDX, TILE_K, BLOCK_N, BLOCK_D)),
            (_consumer, (0, q_desc, k_desc, v_desc, q_buf, k_buf, v_buf, q_bar, k_ready, k_empty, v_ready, v_empty,
                         turn, O, LSE, BITMAPS, bh, b, h, sob, soh, som, m0, row0, n, nf, p0, Lq, D, c,
                         TILE_Q, TILE_K, BLOCK_N, BLOCK_D, NEG_SCALE)),
            (_consumer, (1, q_desc, k_desc, v_desc, q_buf, k_buf, v_buf, q_bar, k_ready, k_empty, v_ready, v_empty,
                         turn, O, LSE, BITMAPS, bh, b, h, sob, soh, som, m0, row0, n, nf, p0, Lq, D, c,
                         TILE_Q, TILE_K, BLOCK_N, BLOCK_D, NEG_SCALE)),
    ], [4, 4], [CONSUMER_REGS, CONSUMER_REGS])


@functools.lru_cache(maxsize=None)
def _capability(device: torch.device) -> tuple[int, int]:
    return torch.cuda.get_device_capability(device)


def _block_d(d_tma: int) -> int:
    return 64 if d_tma <= 64 else 128


def supported(q: torch.Tensor, bm: BlockMap, d_tma: int, softcap) -> bool:
    """Can the Hopper kernel run this forward? sm_90, fp16/bf16, padded head dim <= 128
    (zero-padded to 64 or 128 in shared memory), no softcap, query tiles of a multiple of
    128 rows and key tiles of >= 64 keys."""
    if not (ENABLED and HAVE_GLUON) or q.device.type != "cuda" or softcap is not None:
        return False
    if q.dtype not in (torch.float16, torch.bfloat16) or d_tma > 128:
        return False
    if _capability(q.device) != (9, 0):
        return False
    return bm.block_q % 128 == 0 and bm.block_k >= 64


@functools.lru_cache(maxsize=None)
def _smem_layout(shape: tuple, dtype: torch.dtype):
    return gl.NVMMASharedLayout.get_default_for(list(shape), gl.bfloat16 if dtype == torch.bfloat16 else gl.float16)


def sm90_forward(q, k, v, out, lse, bm: BlockMap, scale: float, d: int, d_tma: int, map_sb: int, map_sh: int):
    """q: (B, Hq, Lq, d_tma), k/v: (B, Hkv, Lk, d_tma), TMA-ready (``tma.tma_operand``);
    writes out (B, Hq, Lq, d) and lse (B, Hq, Lq) fp32 natural log."""
    b, hq, lq, _ = q.shape
    block_d = _block_d(d_tma)
    block_n = min(128, bm.block_k)
    grid = (b * hq * bm.n_q_tiles * (bm.block_q // 128),)
    # 3 warpgroups: 168 registers a thread on average = 232 + 232 + 40
    _attn_fwd_sm90[grid](
        q, k, v, out, lse, bm.full_ptr, bm.full_idx, bm.part_ptr, bm.part_idx, bm.bitmaps, bm.q_order,
        *q.stride()[:3], *k.stride()[:3], *v.stride()[:3], *out.stride()[:3],
        hq, hq // k.shape[1], lq, k.shape[2], d, d_tma, map_sb, map_sh, bm.n_q_tiles, b * hq, scale,
        Q_SMEM=_smem_layout((64, block_d), q.dtype), KV_SMEM=_smem_layout((block_n, block_d), q.dtype),
        TILE_Q=bm.block_q, TILE_K=bm.block_k, BLOCK_N=block_n, BLOCK_D=block_d, NUM_STAGES=STAGES,
        NEG_SCALE=scale < 0, CONSUMER_REGS=_CONSUMER_REGS, num_warps=4, maxnreg=(2 * _CONSUMER_REGS + _PRODUCER_REGS) // 3)
