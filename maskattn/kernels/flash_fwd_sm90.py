"""Hopper forward kernel (Gluon): flash attention over a BlockMap with explicit wgmma scheduling.

The portable kernel (``forward.py``) leaves the order of its matrix products to Triton,
which waits for every product before the softmax that follows, so exp2 and the row
statistics never overlap the tensor cores inside a program (ncu, session 6). This kernel
writes the schedule out (FlashAttention-3's intra-warpgroup overlap):

    S_0 = Q K_0^T
    for each key block j:
        issue S_{j+1} = Q K_{j+1}^T          (async, tensor cores)
        P_j = softmax step of S_j           (CUDA cores / MUFU, overlapping S_{j+1} and P_{j-1} V_{j-1})
        wait for P_{j-1} V_{j-1}; rescale O
        issue O += P_j V_j                  (async)
        wait for S_{j+1}; refill the freed K and V buffers (TMA)

Q, K and V come through device-side tensor descriptors (TMA) into shared memory, K in two
buffers and V in three, each with its own mbarrier. A work item is a ``BLOCK_M`` slice of
one query tile of one (batch, head), numbered heaviest first as in the portable kernel; it
walks the tile's full key tiles (no mask arithmetic), then its partial ones (bitmap bits).
The masking rules are the portable kernel's: masked scores are -inf through ``where`` (a NaN
key is harmless), and V of a partial tile is cleaned of non-finite entries in shared
memory before its product (a NaN in an unwritten cache slot cannot leak).

Used on sm_90 GPUs for fp16/bf16 with head dims up to 128 and no softcap (``supported``);
everything else, and the CPU interpreter, runs the portable kernel.
"""
from __future__ import annotations

import functools

import torch
import triton

from ..block_map import BlockMap

try:  # Gluon is Triton's experimental lower-level frontend (Triton >= 3.5 for Hopper)
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl
    from triton.experimental.gluon.language.nvidia.hopper import (
        fence_async_shared, mbarrier, tma, warpgroup_mma, warpgroup_mma_init, warpgroup_mma_wait)
    HAVE_GLUON = True
except ImportError:  # pragma: no cover - older Triton
    HAVE_GLUON = False

# Off by default: on the H200 this kernel is 3-13% slower than the portable one (session 7,
# benchmarks/results/NOTES.md); the tests and benchmarks switch it on to run both.
ENABLED = False

if HAVE_GLUON:
    @gluon.jit
    def _key_block(j, nf, f0, p0, FULL_IDX, PART_IDX, TILE_K: gl.constexpr, SUB_N: gl.constexpr,
                   BLOCK_N: gl.constexpr):
        """Flattened block j of a row (full tiles first, then partial) -> first key row."""
        if j < nf:
            t = gl.load(FULL_IDX + f0 + j // SUB_N)
        else:
            t = gl.load(PART_IDX + p0 + (j - nf) // SUB_N)
        return t * TILE_K + (j % SUB_N) * BLOCK_N

    @gluon.jit
    def _load_block(desc, n0, bar, buf):
        mbarrier.expect(bar, desc.block_type.nbytes)
        tma.async_copy_global_to_shared(desc, [n0, 0], bar, buf)

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
    def _clean_block(buf, BLOCK_N: gl.constexpr, BLOCK_D: gl.constexpr, num_warps: gl.constexpr):
        """Non-finite entries of a V block in shared memory -> 0 (then visible to the tensor cores)."""
        layout: gl.constexpr = gl.BlockedLayout([1, 8], [4, 8], [num_warps, 1], [1, 0])
        x = buf.load(layout)
        buf.store(gl.where(gl.abs(x) < float("inf"), x, gl.zeros_like(x)))
        fence_async_shared()
        gl.thread_barrier()

    @gluon.jit
    def _softmax_block(s, m_i, l_i, allowed, c, MASKED: gl.constexpr, NEG_SCALE: gl.constexpr):
        """One online-softmax step on raw scores s = q.k (M, N): -> p, alpha, new m, new l (log2 units)."""
        if MASKED:
            s = gl.where(allowed, s * c, float("-inf"))
            m_new = gl.maximum(m_i, gl.max(s, 1))
            m_use = gl.where(m_new == float("-inf"), 0.0, m_new)
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
                    TILE_Q: gl.constexpr, TILE_K: gl.constexpr, BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr,
                    NEG_SCALE: gl.constexpr, DTYPE: gl.constexpr):
        """Softmax step of key block j on its raw scores s -> (P_j in the A-operand layout, alpha, m, l)."""
        SUB_N: gl.constexpr = TILE_K // BLOCK_N
        if j < nf:
            p, alpha, m_i, l_i = _softmax_block(s, m_i, l_i, None, c, False, NEG_SCALE)
        else:
            jp = j - nf
            allowed = _block_bits(BITMAPS, p0 + jp // SUB_N, row0, (jp % SUB_N) * BLOCK_N, S_LAYOUT,
                                  BLOCK_M, BLOCK_N, TILE_Q, TILE_K)
            p, alpha, m_i, l_i = _softmax_block(s, m_i, l_i, allowed, c, True, NEG_SCALE)
        return gl.convert_layout(p.to(DTYPE), P_LAYOUT), alpha, m_i, l_i

    @gluon.jit
    def _pv_issue(j, o, alpha, p, v_buf, v_bar, nf, O_LAYOUT: gl.constexpr, BLOCK_N: gl.constexpr,
                  BLOCK_D: gl.constexpr, num_warps: gl.constexpr):
        """O = O * alpha + P_j V_j, issued asynchronously (V_j cleaned first on partial tiles)."""
        o = o * gl.convert_layout(alpha, gl.SliceLayout(1, O_LAYOUT))[:, None]
        vb = j % 2
        mbarrier.wait(v_bar.index(vb), (j // 2) & 1)
        if j >= nf:
            _clean_block(v_buf.index(vb), BLOCK_N, BLOCK_D, num_warps)
        return warpgroup_mma(p, v_buf.index(vb), o, is_async=True)

    @gluon.jit
    def _attn_fwd_sm90(
        Q, K, V, O, LSE,
        FULL_PTR, FULL_IDX, PART_PTR, PART_IDX, BITMAPS, Q_ORDER,
        sqb, sqh, sqm, skb, skh, skn, svb, svh, svn, sob, soh, som,
        H, GROUP, Lq, Lk, D, D_TMA, map_sb, map_sh, n_qt, n_bh, scale,
        Q_SMEM: gl.constexpr, KV_SMEM: gl.constexpr,
        TILE_Q: gl.constexpr, TILE_K: gl.constexpr, BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr,
        BLOCK_D: gl.constexpr, NEG_SCALE: gl.constexpr, num_warps: gl.constexpr,
    ):
        SUB_M: gl.constexpr = TILE_Q // BLOCK_M
        SUB_N: gl.constexpr = TILE_K // BLOCK_N
        # one 64-row slab per warpgroup; scores and output share the row distribution
        S_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[num_warps, 1],
                                                           instr_shape=[16, BLOCK_N, 16])
        O_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[num_warps, 1],
                                                           instr_shape=[16, BLOCK_D, 16])
        P_LAYOUT: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=O_LAYOUT, k_width=2)
        dtype: gl.constexpr = Q.dtype.element_ty

        item = gl.program_id(0)
        bh = item % n_bh  # rank-major numbering: every head's heaviest rows come first
        rank = item // n_bh
        b = bh // H
        h = bh % H
        g = b * map_sb + h * map_sh
        qt = gl.load(Q_ORDER + g * n_qt + rank // SUB_M)
        m0 = qt * TILE_Q + (rank % SUB_M) * BLOCK_M
        row = g * n_qt + qt
        kvh = h // GROUP
        f0 = gl.load(FULL_PTR + row)
        nf = (gl.load(FULL_PTR + row + 1) - f0) * SUB_N
        p0 = gl.load(PART_PTR + row)
        n = nf + (gl.load(PART_PTR + row + 1) - p0) * SUB_N

        q_desc = tma.make_tensor_descriptor(Q + b.to(gl.int64) * sqb + h.to(gl.int64) * sqh, shape=[Lq, D_TMA],
                                            strides=[sqm, 1], block_shape=[BLOCK_M, BLOCK_D], layout=Q_SMEM)
        k_desc = tma.make_tensor_descriptor(K + b.to(gl.int64) * skb + kvh.to(gl.int64) * skh, shape=[Lk, D_TMA],
                                            strides=[skn, 1], block_shape=[BLOCK_N, BLOCK_D], layout=KV_SMEM)
        v_desc = tma.make_tensor_descriptor(V + b.to(gl.int64) * svb + kvh.to(gl.int64) * svh, shape=[Lk, D_TMA],
                                            strides=[svn, 1], block_shape=[BLOCK_N, BLOCK_D], layout=KV_SMEM)

        q_buf = gl.allocate_shared_memory(dtype, [BLOCK_M, BLOCK_D], Q_SMEM)
        k_buf = gl.allocate_shared_memory(dtype, [2, BLOCK_N, BLOCK_D], KV_SMEM)
        v_buf = gl.allocate_shared_memory(dtype, [2, BLOCK_N, BLOCK_D], KV_SMEM)
        q_bar = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
        k_bar = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
        v_bar = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
        mbarrier.init(q_bar, count=1)
        for i in gl.static_range(2):
            mbarrier.init(k_bar.index(i), count=1)
        for i in gl.static_range(2):
            mbarrier.init(v_bar.index(i), count=1)

        m_i = gl.full([BLOCK_M], float("-inf"), gl.float32, layout=gl.SliceLayout(1, S_LAYOUT))
        l_i = gl.zeros([BLOCK_M], gl.float32, layout=gl.SliceLayout(1, S_LAYOUT))
        o = gl.zeros([BLOCK_M, BLOCK_D], gl.float32, layout=O_LAYOUT)
        c = scale * 1.4426950408889634
        row0 = m0 - qt * TILE_Q  # first row inside the query tile (bitmap coordinates)

        if n > 0:
            # prologue: Q, K_0, K_1, V_0, V_1 in flight; S_0 and its softmax; K_2 into K_0's buffer
            _load_block(q_desc, m0, q_bar, q_buf)
            for i in gl.static_range(2):
                if i < n:
                    n_i = _key_block(i, nf, f0, p0, FULL_IDX, PART_IDX, TILE_K, SUB_N, BLOCK_N)
                    _load_block(k_desc, n_i, k_bar.index(i), k_buf.index(i))
                    _load_block(v_desc, n_i, v_bar.index(i), v_buf.index(i))
            mbarrier.wait(q_bar, 0)
            mbarrier.wait(k_bar.index(0), 0)
            s_tok = warpgroup_mma(q_buf, k_buf.index(0).permute((1, 0)),
                                  gl.zeros([BLOCK_M, BLOCK_N], gl.float32, layout=S_LAYOUT), use_acc=False,
                                  is_async=True)
            s = warpgroup_mma_wait(0, deps=[s_tok])
            gl.thread_barrier()
            if n > 2:
                _load_block(k_desc, _key_block(2, nf, f0, p0, FULL_IDX, PART_IDX, TILE_K, SUB_N, BLOCK_N),
                            k_bar.index(0), k_buf.index(0))
            p, alpha, m_i, l_i = _softmax_of(0, s, m_i, l_i, nf, p0, BITMAPS, row0, c, S_LAYOUT, P_LAYOUT,
                                             TILE_Q, TILE_K, BLOCK_M, BLOCK_N, NEG_SCALE, dtype)

            for j in range(0, n - 1):
                # S_{j+1} and P_j V_j on the tensor cores back to back; the softmax of S_{j+1}
                # runs while P_j V_j does (FlashAttention-3's intra-warpgroup overlap)
                kb = (j + 1) % 2
                # key rows of the blocks refilled at the end of this step, read early so the
                # index loads' latency hides under the matrix products
                k_row = _key_block(gl.minimum(j + 3, n - 1), nf, f0, p0, FULL_IDX, PART_IDX, TILE_K, SUB_N, BLOCK_N)
                v_row = _key_block(gl.minimum(j + 2, n - 1), nf, f0, p0, FULL_IDX, PART_IDX, TILE_K, SUB_N, BLOCK_N)
                mbarrier.wait(k_bar.index(kb), ((j + 1) // 2) & 1)
                s_tok = warpgroup_mma(q_buf, k_buf.index(kb).permute((1, 0)),
                                      gl.zeros([BLOCK_M, BLOCK_N], gl.float32, layout=S_LAYOUT), use_acc=False,
                                      is_async=True)
                o_tok = _pv_issue(j, o, alpha, p, v_buf, v_bar, nf, O_LAYOUT, BLOCK_N, BLOCK_D, num_warps)
                s = warpgroup_mma_wait(1, deps=[s_tok])
                p_next, alpha, m_i, l_i = _softmax_of(j + 1, s, m_i, l_i, nf, p0, BITMAPS, row0, c, S_LAYOUT,
                                                      P_LAYOUT, TILE_Q, TILE_K, BLOCK_M, BLOCK_N, NEG_SCALE, dtype)
                o = warpgroup_mma_wait(0, deps=[o_tok])
                p = p_next
                # every warpgroup is past K_{j+1} and V_j: refill those buffers
                gl.thread_barrier()
                if j + 3 < n:
                    _load_block(k_desc, k_row, k_bar.index(kb), k_buf.index(kb))
                if j + 2 < n:
                    _load_block(v_desc, v_row, v_bar.index(j % 2), v_buf.index(j % 2))
            o_tok = _pv_issue(n - 1, o, alpha, p, v_buf, v_bar, nf, O_LAYOUT, BLOCK_N, BLOCK_D, num_warps)
            o = warpgroup_mma_wait(0, deps=[o_tok])

        # fully masked rows: l = 0 -> out 0, lse -inf (never NaN)
        l_safe = gl.where(l_i == 0.0, 1.0, l_i)
        lse = gl.where(l_i == 0.0, float("-inf"), (m_i + gl.log2(l_safe)) * 0.6931471805599453)
        out = o / gl.convert_layout(l_safe, gl.SliceLayout(1, O_LAYOUT))[:, None]
        offs_m = m0 + gl.arange(0, BLOCK_M, layout=gl.SliceLayout(1, O_LAYOUT))
        offs_d = gl.arange(0, BLOCK_D, layout=gl.SliceLayout(0, O_LAYOUT))
        m_ok = offs_m < Lq
        gl.store(O + b.to(gl.int64) * sob + h.to(gl.int64) * soh + offs_m[:, None].to(gl.int64) * som
                 + offs_d[None, :], out.to(dtype), mask=m_ok[:, None] & (offs_d[None, :] < D))
        offs_l = m0 + gl.arange(0, BLOCK_M, layout=gl.SliceLayout(1, S_LAYOUT))
        gl.store(LSE + bh.to(gl.int64) * Lq + offs_l, lse, mask=offs_l < Lq)
        mbarrier.invalidate(q_bar)
        for i in gl.static_range(2):
            mbarrier.invalidate(k_bar.index(i))
        for i in gl.static_range(2):
            mbarrier.invalidate(v_bar.index(i))


# (BLOCK_M, BLOCK_N) by padded head dim; one warpgroup (4 warps) per 64 query rows. At
# 128 x 128, two warpgroups share one program's K/V buffers (Q + 2 K + 3 V blocks: 192 KB
# of shared memory at D = 128, one program per SM).
SM90_BLOCKS = {64: (128, 128), 128: (128, 128)}


@functools.lru_cache(maxsize=None)
def _capability(device: torch.device) -> tuple[int, int]:
    return torch.cuda.get_device_capability(device)


def _block_d(d_tma: int) -> int:
    return 64 if d_tma <= 64 else 128


def sm90_config(block_q: int, block_k: int, d_tma: int) -> tuple[int, int, int]:
    """(BLOCK_M, BLOCK_N, num_warps) for a map of ``block_q x block_k`` tiles."""
    block_m, block_n = SM90_BLOCKS[_block_d(d_tma)]
    block_m, block_n = min(block_m, block_q), min(block_n, block_k)
    return block_m, block_n, block_m // 16


def supported(q: torch.Tensor, bm: BlockMap, d_tma: int, softcap) -> bool:
    """Can the Hopper kernel run this forward? sm_90, fp16/bf16, padded head dim <= 128
    (zero-padded to 64 or 128 in shared memory), no softcap, tiles of >= 64 query rows and
    >= 32 keys."""
    if not HAVE_GLUON or q.device.type != "cuda" or softcap is not None:
        return False
    if q.dtype not in (torch.float16, torch.bfloat16) or d_tma > 128:
        return False
    if _capability(q.device) != (9, 0):
        return False
    return bm.block_q >= 64 and bm.block_k >= 32


@functools.lru_cache(maxsize=None)
def _smem_layout(shape: tuple, dtype: torch.dtype):
    return gl.NVMMASharedLayout.get_default_for(list(shape), gl.bfloat16 if dtype == torch.bfloat16 else gl.float16)


def sm90_forward(q, k, v, out, lse, bm: BlockMap, scale: float, d: int, d_tma: int, map_sb: int, map_sh: int):
    """q: (B, Hq, Lq, d_tma), k/v: (B, Hkv, Lk, d_tma), TMA-ready (``tma.tma_operand``);
    writes out (B, Hq, Lq, d) and lse (B, Hq, Lq) fp32 natural log."""
    b, hq, lq, _ = q.shape
    block_d = _block_d(d_tma)
    block_m, block_n, warps = sm90_config(bm.block_q, bm.block_k, d_tma)
    grid = (b * hq * bm.n_q_tiles * (bm.block_q // block_m),)
    _attn_fwd_sm90[grid](
        q, k, v, out, lse, bm.full_ptr, bm.full_idx, bm.part_ptr, bm.part_idx, bm.bitmaps, bm.q_order,
        *q.stride()[:3], *k.stride()[:3], *v.stride()[:3], *out.stride()[:3],
        hq, hq // k.shape[1], lq, k.shape[2], d, d_tma, map_sb, map_sh, bm.n_q_tiles, b * hq, scale,
        Q_SMEM=_smem_layout((block_m, block_d), q.dtype), KV_SMEM=_smem_layout((block_n, block_d), q.dtype),
        TILE_Q=bm.block_q, TILE_K=bm.block_k, BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_D=block_d,
        NEG_SCALE=scale < 0, num_warps=warps)
