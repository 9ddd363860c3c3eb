"""Hopper forward kernel (Gluon, warp-specialized): flash attention over a BlockMap with
FlashAttention-3's schedule.

The portable kernel (``forward.py``) leaves the order of its matrix products to Triton,
which waits for every product before the softmax that follows, so exp2 and the row
statistics never overlap the tensor cores inside a program (ncu, session 6). One program
here is one 128-row slice of a query tile, run by three warpgroups that each do one job:

* **producer** (the default partition, few registers): TMA loads of Q, then of each key
  block's K and V into a ring of buffers (``HEAD_CONFIGS``), each refilled as soon as both
  consumers have released it (mbarriers, no CTA-wide barrier). A NaN in a V row that some
  query row may not see (an unwritten cache slot) would reach that row through ``0 * NaN``
  in P V, so V of partial tiles is cleaned of non-finite values in shared memory (land,
  clean, hand over), which costs up to 22% on sparse maps (H200, session 11). On the
  static schedules (``PASSES=2``: listed items, and the split-KV decode items, all of whose
  blocks are partial ones) V is first handed over as it landed: each consumer thread
  notes a NaN in its O registers at the end of every item (``_nan_flags``, no cross-thread
  work), and after its last item the consumer sets a flag in shared memory if any thread saw
  one; both consumers then meet the producer at a barrier, and if the flag is set all three walk
  the program's items a second time, cleaning. The common case costs that one barrier. The dynamic
  schedule (long rows) cleans: it cannot walk a program's items again, and on causal maps the
  redo did not pay anyway (0.95-0.99x with one program per item, session 12).
* **two consumers** (64 query rows each): per key block, S_j = Q K_j^T and O += P_{j-1} V_{j-1}
  are issued back to back (async wgmma), the softmax of S_j then runs while P_{j-1} V_{j-1}
  is still on the tensor cores (intra-warpgroup overlap), and the two consumers take turns
  issuing their products (a pair of mbarriers: inter-warpgroup ping-pong), so one's softmax
  runs under the other's matrix products. Every consumer thread arrives on the barriers it
  signals (``sm90_common.signal``), which leaves one warpgroup ``bar.sync`` per key block
  instead of four.

A work item (one 128-row slice of a query tile of one (batch, head)) walks its full key
tiles (no mask arithmetic), then its partial ones (bitmap bits; masked scores are -inf
through ``where``, so a NaN key is harmless). Items are numbered heaviest first as in the
portable kernel. The grid is persistent (one program per SM), so the producer loads the next
item while the consumers finish the current one; on listed items a consumer also takes and
decodes its next item while the item's last P V runs (``EARLY_TAKE``). Maps with short rows share
the items out statically, each program walking a host-made list (``program_lists``: balanced
by estimated cost, and ordered so that the items running at one moment are neighbouring query tiles that
read the same K / V rows); the others (causal, Longformer's global rows) take them one at a time
from a per-launch counter (``dynamic_schedule``; both in ``sm90_schedule``), heaviest first
within sections of a few heads whose K / V fit the L2 (``counter_section``, as
FlashAttention-4's scheduler swizzles heads). The split-KV decode
items (``PACKED``) run one program per item. The operands are read through one
4-d descriptor each, ``(B, H, L, D)`` with any strides, made once per program.

Used on sm_90 for fp16/bf16, padded head dims up to 256 (zero-padded to 64, 128 or 256 in shared
memory: ``HEAD_CONFIGS``), no softcap, maps with query tiles of a multiple of 128 rows and key
tiles of at least 64 (``supported``); everything else, and the CPU interpreter, runs the portable
kernel. Gluon functions cannot call ``@triton.jit`` helpers (they need explicit layouts), so the
softmax step below restates ``common.softmax_step``; a partial block's bitmap words are loaded
(``sm90_common.rows_words``) before its scores are waited for and applied by
``sm90_common.where_words``.
"""
from __future__ import annotations

import numpy as np
import torch

from ..block_map import BlockMap
from . import work_lists
from .config import is_row_bound, sm_count
from .sm90_common import HAVE_GLUON, eligible, smem_layout
from .sm90_schedule import l2_section

if HAVE_GLUON:
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl
    from triton.experimental.gluon.language.nvidia.hopper import (
        fence_async_shared, mbarrier, tma, warpgroup_mma, warpgroup_mma_wait)

    from .sm90_common import rows_words, signal, where_words
    from .sm90_schedule import peek_item, program_items, section_item, take_item

ENABLED = True
# Per padded head dim: (BLOCK_D, largest BLOCK_N, K/V buffers in the ring). Shared memory holds Q
# (2 x 64 x BLOCK_D) and the ring (2 x stages x BLOCK_N x BLOCK_D): 112 / 224 / 192 KB; a consumer
# thread holds O (64 x BLOCK_D fp32: 32 / 64 / 128 registers) and S (64 x BLOCK_N: 64 / 64 / 32).
# Head dim 128: 3 stages beat 2 by 2-6% on sparse maps, equal on causal (H200 sweep, session 8);
# head dim 256 fits 2 stages of 64 keys (FlashAttention-3 takes 80).
HEAD_CONFIGS = ((64, 128, 3), (128, 128, 3), (256, 64, 2))
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
        """Non-finite entries of a V block in shared memory -> 0, 16 rows at a time (8 for head
        dim 256: the producer has few registers), then made visible to the tensor cores."""
        COLS: gl.constexpr = 8 if BLOCK_D <= 128 else 16  # threads along a row
        ROWS: gl.constexpr = 32 // COLS * gl.num_warps()
        layout: gl.constexpr = gl.BlockedLayout([1, 8], [32 // COLS, COLS], [gl.num_warps(), 1], [1, 0])
        for r in gl.static_range(0, BLOCK_N, ROWS):
            part = buf.slice(r, ROWS)
            x = part.load(layout)
            part.store(gl.where(gl.abs(x) < float("inf"), x, gl.zeros_like(x)))
        fence_async_shared()

    @gluon.jit
    def _item(t, n_bh, section, H, GROUP, Lq, map_sb, map_sh, n_qt, n_splits, Q_ORDER, FULL_PTR, PART_PTR,
              TILE_Q: gl.constexpr, SUB_N: gl.constexpr, PACKED: gl.constexpr):
        """Work item t -> (bh, b, h, KV head, first query row, that row inside its query tile, first
        full / partial tile slot, blocks of full tiles, blocks in all, split).

        Rank-major (every head's heaviest 128-row slices first) within sections of ``section``
        heads (``sm90_schedule.section_item``; ``section == n_bh``: over all heads). ``PACKED``
        (split-KV decoding, ``flash_decode_sm90``): an item is 128 packed rows ``p = head * Lq + r`` of the query
        heads of one KV head (one query tile per map row, the same map for every head) times one
        of ``n_splits`` equal chunks of the row's key tiles; ``n_qt`` counts the 128-row blocks of
        packed rows, which vary fastest so that the blocks reading one K/V chunk run side by side.
        Then h is the group's first query head, the first query row is that of the (B, H * Lq)
        view of Q, and the block counts are shifted to the chunk (a negative count of full blocks:
        the chunk holds partial tiles only)."""
        if PACKED:
            rb = t % n_qt
            split = (t // n_qt) % n_splits
            bk = t // n_qt // n_splits  # b * Hkv + KV head
            b = bk // (H // GROUP)
            kvh = bk % (H // GROUP)
            h = kvh * GROUP
            bh = b * H + h
            row = b * map_sb
            f0 = gl.load(FULL_PTR + row)
            n_full = gl.load(FULL_PTR + row + 1) - f0
            p0 = gl.load(PART_PTR + row)
            n_tiles = n_full + gl.load(PART_PTR + row + 1) - p0
            chunk = gl.cdiv(n_tiles, n_splits)
            t0 = gl.minimum(split * chunk, n_tiles)
            row0 = rb * (2 * HALF_M)
            m0 = h * Lq + row0
            f0 = f0 + t0
            nf = (n_full - t0) * SUB_N
            n = (gl.minimum(t0 + chunk, n_tiles) - t0) * SUB_N
        else:
            SUB_M: gl.constexpr = TILE_Q // (2 * HALF_M)
            bh, rank = section_item(t, n_bh, section, n_qt * SUB_M)
            b = bh // H
            h = bh % H
            g = b * map_sb + h * map_sh  # which (batch, head) map this item reads
            qt = gl.load(Q_ORDER + g * n_qt + rank // SUB_M)
            row0 = (rank % SUB_M) * (2 * HALF_M)
            row = g * n_qt + qt
            f0 = gl.load(FULL_PTR + row)
            nf = (gl.load(FULL_PTR + row + 1) - f0) * SUB_N
            p0 = gl.load(PART_PTR + row)
            n = nf + (gl.load(PART_PTR + row + 1) - p0) * SUB_N
            kvh = h // GROUP
            m0 = qt * TILE_Q + row0
            split = 0
        return bh, b, h, kvh, m0, row0, f0, nf, p0, n, split

    @gluon.jit
    def _producer(q_desc, k_desc, v_desc, q_buf, k_buf, v_buf, q_ready, q_empty, k_ready, k_empty, v_ready, v_empty,
                  v_land, done, redo_flag, SCHED, PROG_PTR, PROG_ITEMS, item_buf, item_ready, item_free, n_items,
                  n_bh, section, H, GROUP, Lq, map_sb, map_sh, n_qt, n_splits, Q_ORDER, FULL_PTR, PART_PTR,
                  FULL_IDX, PART_IDX, TILE_Q: gl.constexpr, TILE_K: gl.constexpr, BLOCK_N: gl.constexpr,
                  BLOCK_D: gl.constexpr, PACKED: gl.constexpr, PASSES: gl.constexpr, SCHEDULE: gl.constexpr):
        SUB_N: gl.constexpr = TILE_K // BLOCK_N
        NUM: gl.constexpr = k_buf.type.shape[0]
        nbytes: gl.constexpr = k_desc.block_type.nbytes
        it = 0  # key blocks loaded so far (ring slot and phase)
        qi = 0  # query slices loaded so far
        pl = 0  # partial V blocks cleaned so far
        first, count = program_items(PROG_PTR, SCHEDULE)
        for rp in range(PASSES):  # pass 1 only if a consumer met a NaN in pass 0 (``_redo_stop``)
            stop = _redo_stop(rp, n_items, done, redo_flag)
            k = 0  # items taken in this pass
            ahead = peek_item(k, first, count, PROG_ITEMS, SCHEDULE)
            t = take_item(k, first, count, stop, ahead, SCHED, item_buf, item_ready, item_free, True, SCHEDULE)
            while t < stop:
                ahead = peek_item(k + 1, first, count, PROG_ITEMS, SCHEDULE)  # in flight during item k
                bh, b, h, kvh, m0, row0, f0, nf, p0, n, split = _item(
                    t, n_bh, section, H, GROUP, Lq, map_sb, map_sh, n_qt, n_splits, Q_ORDER, FULL_PTR, PART_PTR, TILE_Q,
                    SUB_N, PACKED)
                q_head = h
                if PACKED:  # packed rows of the (B, 1, H * Lq) view of Q
                    q_head = 0
                if n > 0:
                    # both consumers are past their last Q K^T of the previous slice (a fresh
                    # mbarrier counts as having completed the phase before 0: the first wait passes)
                    mbarrier.wait(q_empty, (qi & 1) ^ 1)
                    mbarrier.expect(q_ready, 2 * q_desc.block_type.nbytes)
                    tma.async_copy_global_to_shared(q_desc, [b, q_head, m0, 0], q_ready, q_buf.index(0))
                    tma.async_copy_global_to_shared(q_desc, [b, q_head, m0 + HALF_M, 0], q_ready, q_buf.index(1))
                    qi += 1
                for j in range(n):
                    s = it % NUM
                    ph = (it // NUM) & 1
                    n0 = _key_block(j, nf, f0, p0, FULL_IDX, PART_IDX, TILE_K, SUB_N, BLOCK_N)
                    mbarrier.wait(k_empty.index(s), ph ^ 1)
                    mbarrier.expect(k_ready.index(s), nbytes)
                    tma.async_copy_global_to_shared(k_desc, [b, kvh, n0, 0], k_ready.index(s), k_buf.index(s))
                    mbarrier.wait(v_empty.index(s), ph ^ 1)
                    if (rp == PASSES - 1) & (j >= nf):  # a partial tile in the last pass: land, clean, hand over
                        mbarrier.expect(v_land, nbytes)
                        tma.async_copy_global_to_shared(v_desc, [b, kvh, n0, 0], v_land, v_buf.index(s))
                        mbarrier.wait(v_land, pl & 1)
                        pl += 1
                        _clean_block(v_buf.index(s).reshape([BLOCK_N, BLOCK_D]), BLOCK_N, BLOCK_D)
                        mbarrier.arrive(v_ready.index(s), count=1)
                    else:
                        mbarrier.expect(v_ready.index(s), nbytes)
                        tma.async_copy_global_to_shared(v_desc, [b, kvh, n0, 0], v_ready.index(s), v_buf.index(s))
                    it += 1
                k += 1
                t = take_item(k, first, count, stop, ahead, SCHED, item_buf, item_ready, item_free, True, SCHEDULE)

    @gluon.jit
    def _redo_stop(rp, n_items, done, redo_flag):
        """End of pass rp's item range: all items in pass 0; in pass 1 (after both consumers
        have finished pass 0: the ``done`` barrier) all items again if a consumer set
        ``redo_flag``, else none."""
        stop = n_items
        if rp == 1:
            mbarrier.wait(done, 0)
            flag = redo_flag.load(gl.BlockedLayout([1], [32], [gl.num_warps()], [0]))
            stop = n_items * (gl.max(flag, 0) != 0).to(gl.int32)
        return stop

    @gluon.jit
    def _softmax_block(s, m_i, l_i, words, c, MASKED: gl.constexpr, SCALE_SIGN: gl.constexpr):
        """One online-softmax step on raw scores s = q.k (M, N): -> p, alpha, new m, new l (log2 units).
        The scale c (log2 units) is folded into one multiply-add per score: the row max of s * c is
        c times the row max of s for c > 0 (the row min for c < 0). Masked scores (``words``:
        ``rows_words`` of a partial block) are filled before the scale with the value the scale
        sends to -inf; at scale 0 (SCALE_SIGN 0: inf * 0 is NaN) they are filled after it."""
        c_fold = c
        if MASKED:
            w0, w1, w2, w3 = words
            if SCALE_SIGN == 0:
                s = s * c
                c_fold = 1.0
            s = where_words(s, w0, w1, w2, w3, float("inf") if SCALE_SIGN < 0 else float("-inf"))
        if SCALE_SIGN < 0:
            m_new = gl.maximum(m_i, gl.min(s, 1) * c_fold)
        else:
            m_new = gl.maximum(m_i, gl.max(s, 1) * c_fold)
        m_use = m_new
        if MASKED:  # nothing allowed yet: subtract 0, not -inf (no NaN)
            m_use = gl.where(m_new == float("-inf"), 0.0, m_new)
        p = gl.exp2(s * c_fold - m_use[:, None])
        alpha = gl.exp2(m_i - m_use)
        l_i = l_i * alpha + gl.sum(p, 1)
        return p, alpha, m_new, l_i

    @gluon.jit
    def _block_words(j, nf, p0, BITMAPS, row0, Lq, S_LAYOUT: gl.constexpr, TILE_Q: gl.constexpr,
                     TILE_K: gl.constexpr, BLOCK_N: gl.constexpr, PACKED: gl.constexpr):
        """The bitmap words of key block j's rows (``rows_words``; loaded only for partial blocks,
        j >= nf). ``row0``: the first row inside the query tile, or with ``PACKED`` the first
        packed row (packed row p is query row p % Lq)."""
        SUB_N: gl.constexpr = TILE_K // BLOCK_N
        jp = gl.maximum(j - nf, 0)
        rows = row0 + gl.arange(0, HALF_M, layout=gl.SliceLayout(1, S_LAYOUT))
        if PACKED:
            rows = rows % Lq
        return rows_words(BITMAPS, p0 + jp // SUB_N, rows, (jp % SUB_N) * BLOCK_N, j >= nf, TILE_Q, TILE_K, BLOCK_N)

    @gluon.jit
    def _softmax_of(j, s, m_i, l_i, nf, words, c, P_LAYOUT: gl.constexpr, SCALE_SIGN: gl.constexpr,
                    DTYPE: gl.constexpr):
        """Softmax step of key block j on its raw scores s -> (P_j as the A operand, alpha, m, l);
        ``words``: the block's bitmap words (``_block_words``, issued before s was waited for)."""
        if j < nf:
            p, alpha, m_i, l_i = _softmax_block(s, m_i, l_i, words, c, False, SCALE_SIGN)
        else:
            p, alpha, m_i, l_i = _softmax_block(s, m_i, l_i, words, c, True, SCALE_SIGN)
        return gl.convert_layout(p.to(DTYPE), P_LAYOUT), alpha, m_i, l_i

    @gluon.jit
    def _consumer(WG: gl.constexpr, q_buf, k_buf, v_buf, q_ready, q_empty, k_ready, k_empty, v_ready, v_empty,
                  my_turn, their_turn, done, redo_flag, SCHED, PROG_PTR, PROG_ITEMS, item_buf, item_ready,
                  item_free, O, LSE, ACC, M, L, n_items, n_bh, section, H, GROUP, map_sb, map_sh, n_qt, n_splits,
                  Q_ORDER, FULL_PTR, PART_PTR, BITMAPS, sob, soh, som, Lq, D, D_TMA, c, TILE_Q: gl.constexpr,
                  TILE_K: gl.constexpr, BLOCK_N: gl.constexpr, BLOCK_D: gl.constexpr, SCALE_SIGN: gl.constexpr,
                  PACKED: gl.constexpr, PASSES: gl.constexpr, THREAD_RELEASE: gl.constexpr,
                  SCHEDULE: gl.constexpr):
        SUB_N: gl.constexpr = TILE_K // BLOCK_N
        NUM: gl.constexpr = k_buf.type.shape[0]
        EARLY_TAKE: gl.constexpr = SCHEDULE != "counter"  # see below, after the last P V's issue
        S_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                           instr_shape=[16, BLOCK_N, 16])
        O_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                           instr_shape=[16, BLOCK_D, 16])
        P_LAYOUT: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=O_LAYOUT, k_width=2)
        dtype: gl.constexpr = q_buf.dtype
        s_zero = gl.zeros([HALF_M, BLOCK_N], gl.float32, layout=S_LAYOUT)
        qb = q_buf.index(WG).reshape([HALF_M, BLOCK_D])
        t_phase = 1 - WG  # consumer 0 issues first (a fresh mbarrier passes a parity-1 wait)
        it = 0  # key blocks consumed so far (ring slot and phase), as in the producer
        qi = 0
        first, count = program_items(PROG_PTR, SCHEDULE)
        for rp in range(PASSES):  # pass 1: the program's items again, V cleaned, if pass 0 met a NaN
            if rp == 1:  # both consumers are done with pass 0: then ``redo_flag`` is final
                mbarrier.arrive(done, count=1)
            stop = _redo_stop(rp, n_items, done, redo_flag)
            k = 0  # items taken in this pass
            nan_seen = _nan_flags(gl.zeros([HALF_M, BLOCK_D], gl.float32, layout=O_LAYOUT))
            ahead = peek_item(k, first, count, PROG_ITEMS, SCHEDULE)
            t, n_fields = _next_item(WG, k, first, count, stop, ahead, SCHED, item_buf, item_ready, item_free, n_bh,
                                     section, H, GROUP, Lq, map_sb, map_sh, n_qt, n_splits, Q_ORDER, FULL_PTR,
                                     PART_PTR, TILE_Q, SUB_N, PACKED, SCHEDULE)
            bh, b, h, m0, row0, f0, nf, p0, n, split = n_fields
            while t < stop:
                ahead = peek_item(k + 1, first, count, PROG_ITEMS, SCHEDULE)  # in flight during item k
                k += 1
                m_i = gl.full([HALF_M], float("-inf"), gl.float32, layout=gl.SliceLayout(1, S_LAYOUT))
                l_i = gl.zeros([HALF_M], gl.float32, layout=gl.SliceLayout(1, S_LAYOUT))
                o = gl.zeros([HALF_M, BLOCK_D], gl.float32, layout=O_LAYOUT)
                t_next, n_fields = stop, (bh, b, h, m0, row0, f0, nf, p0, n, split)  # set below
                if n > 0:
                    mbarrier.wait(q_ready, qi & 1)
                    qi += 1
                    ks = it % NUM
                    mbarrier.wait(k_ready.index(ks), (it // NUM) & 1)
                    mbarrier.wait(my_turn, t_phase)
                    t_phase ^= 1
                    s_tok = warpgroup_mma(qb, _kv(k_buf, ks, BLOCK_N, BLOCK_D).permute((1, 0)), s_zero, use_acc=False,
                                          is_async=True)
                    words = _block_words(0, nf, p0, BITMAPS, row0, Lq, S_LAYOUT, TILE_Q, TILE_K, BLOCK_N, PACKED)
                    signal(their_turn, THREAD_RELEASE)
                    s = warpgroup_mma_wait(0, deps=[s_tok])
                    signal(k_empty.index(ks), THREAD_RELEASE)
                    p, alpha, m_i, l_i = _softmax_of(0, s, m_i, l_i, nf, words, c, P_LAYOUT, SCALE_SIGN, dtype)
                    for j in range(1, n):
                        ks = (it + j) % NUM
                        vs = (it + j - 1) % NUM
                        mbarrier.wait(k_ready.index(ks), ((it + j) // NUM) & 1)
                        mbarrier.wait(my_turn, t_phase)
                        t_phase ^= 1
                        s_tok = warpgroup_mma(qb, _kv(k_buf, ks, BLOCK_N, BLOCK_D).permute((1, 0)), s_zero,
                                              use_acc=False, is_async=True)
                        words = _block_words(j, nf, p0, BITMAPS, row0, Lq, S_LAYOUT, TILE_Q, TILE_K, BLOCK_N, PACKED)
                        o = o * gl.convert_layout(alpha, gl.SliceLayout(1, O_LAYOUT))[:, None]
                        mbarrier.wait(v_ready.index(vs), ((it + j - 1) // NUM) & 1)
                        o_tok = warpgroup_mma(p, _kv(v_buf, vs, BLOCK_N, BLOCK_D), o, is_async=True)
                        signal(their_turn, THREAD_RELEASE)
                        s = warpgroup_mma_wait(1, deps=[s_tok])  # S_j done; P_{j-1} V_{j-1} may still run
                        signal(k_empty.index(ks), THREAD_RELEASE)
                        p, alpha, m_i, l_i = _softmax_of(j, s, m_i, l_i, nf, words, c, P_LAYOUT, SCALE_SIGN, dtype)
                        o = warpgroup_mma_wait(0, deps=[o_tok])
                        signal(v_empty.index(vs), THREAD_RELEASE)
                    # every Q K^T of this slice is done: the producer may load the next Q
                    signal(q_empty, THREAD_RELEASE)
                    vs = (it + n - 1) % NUM
                    o = o * gl.convert_layout(alpha, gl.SliceLayout(1, O_LAYOUT))[:, None]
                    mbarrier.wait(v_ready.index(vs), ((it + n - 1) // NUM) & 1)
                    o_tok = warpgroup_mma(p, _kv(v_buf, vs, BLOCK_N, BLOCK_D), o, is_async=True)
                    if EARLY_TAKE:
                        # the next item taken and decoded while the last P V runs (the decode's
                        # divisions and dependent loads were ~4% of a consumer's samples on sliding
                        # 32k; listed items 1.01-1.02x faster, the counter's 0.98-0.99x: session 38)
                        t_next, n_fields = _next_item(WG, k, first, count, stop, ahead, SCHED, item_buf, item_ready,
                                                      item_free, n_bh, section, H, GROUP, Lq, map_sb, map_sh, n_qt,
                                                      n_splits, Q_ORDER, FULL_PTR, PART_PTR, TILE_Q, SUB_N, PACKED,
                                                      SCHEDULE)
                    o = warpgroup_mma_wait(0, deps=[o_tok])
                    signal(v_empty.index(vs), THREAD_RELEASE)
                    it += n
                if (not EARLY_TAKE) or (n == 0):
                    t_next, n_fields = _next_item(WG, k, first, count, stop, ahead, SCHED, item_buf, item_ready,
                                                  item_free, n_bh, section, H, GROUP, Lq, map_sb, map_sh, n_qt,
                                                  n_splits, Q_ORDER, FULL_PTR, PART_PTR, TILE_Q, SUB_N, PACKED,
                                                  SCHEDULE)

                if PASSES > 1:  # a NaN here may come from a masked non-finite V value: redo with cleaning
                    nan_seen = gl.maximum(nan_seen, _nan_flags(o))
                offs_d = gl.arange(0, BLOCK_D, layout=gl.SliceLayout(0, O_LAYOUT))
                if PACKED:
                    # this split's partials in decode's layout ((B, Hq, Lq, n_splits) rows; acc
                    # unnormalised, m and l in log2 units), merged by ``decode._decode_combine``
                    rows = row0 + gl.arange(0, HALF_M, layout=gl.SliceLayout(1, O_LAYOUT))
                    at = ((b * H + h).to(gl.int64) * Lq + rows) * n_splits + split
                    gl.store(ACC + at[:, None] * D_TMA + offs_d[None, :], o,
                             mask=(rows < GROUP * Lq)[:, None] & (offs_d[None, :] < D_TMA))
                    rows_s = row0 + gl.arange(0, HALF_M, layout=gl.SliceLayout(1, S_LAYOUT))
                    at_s = ((b * H + h).to(gl.int64) * Lq + rows_s) * n_splits + split
                    gl.store(M + at_s, m_i, mask=rows_s < GROUP * Lq)
                    gl.store(L + at_s, l_i, mask=rows_s < GROUP * Lq)
                else:
                    # fully masked rows: l = 0 -> out 0, lse -inf (never NaN)
                    l_safe = gl.where(l_i == 0.0, 1.0, l_i)
                    lse = gl.where(l_i == 0.0, float("-inf"), (m_i + gl.log2(l_safe)) * 0.6931471805599453)
                    out = o / gl.convert_layout(l_safe, gl.SliceLayout(1, O_LAYOUT))[:, None]
                    offs_m = m0 + gl.arange(0, HALF_M, layout=gl.SliceLayout(1, O_LAYOUT))
                    gl.store(O + b.to(gl.int64) * sob + h.to(gl.int64) * soh + offs_m[:, None].to(gl.int64) * som
                             + offs_d[None, :], out.to(dtype), mask=(offs_m < Lq)[:, None] & (offs_d[None, :] < D))
                    offs_l = m0 + gl.arange(0, HALF_M, layout=gl.SliceLayout(1, S_LAYOUT))
                    gl.store(LSE + bh.to(gl.int64) * Lq + offs_l, lse, mask=offs_l < Lq)
                t = t_next
                bh, b, h, m0, row0, f0, nf, p0, n, split = n_fields
            if PASSES > 1:
                # once per pass, not per item: a warpgroup-wide reduction (shuffles, shared memory and
                # two bar.syncs) per item was ~7% of a consumer's samples on sliding 32k (ncu, session 38)
                if rp == 0:
                    if gl.max(gl.max(nan_seen, 1), 0) != 0:
                        redo_flag.store(gl.full([1], 1, gl.int32, gl.BlockedLayout([1], [32], [gl.num_warps()], [0])))

    @gluon.jit
    def _next_item(WG: gl.constexpr, k, first, count, stop, ahead, SCHED, item_buf, item_ready, item_free, n_bh,
                   section, H, GROUP, Lq, map_sb, map_sh, n_qt, n_splits, Q_ORDER, FULL_PTR, PART_PTR,
                   TILE_Q: gl.constexpr, SUB_N: gl.constexpr, PACKED: gl.constexpr, SCHEDULE: gl.constexpr):
        """The program's k-th item (``take_item``) and the ``_item`` fields a consumer uses, its rows
        offset to the consumer's 64 (item 0's past the last, never used)."""
        t = take_item(k, first, count, stop, ahead, SCHED, item_buf, item_ready, item_free, False, SCHEDULE)
        bh, b, h, kvh, m0, row0, f0, nf, p0, n, split = _item(
            gl.where(t < stop, t, 0), n_bh, section, H, GROUP, Lq, map_sb, map_sh, n_qt, n_splits, Q_ORDER, FULL_PTR,
            PART_PTR, TILE_Q, SUB_N, PACKED)
        return t, (bh, b, h, m0 + WG * HALF_M, row0 + WG * HALF_M, f0, nf, p0, n, split)

    @gluon.jit
    def _nan_flags(o):
        """o (M, N) fp32 in a wgmma accumulator layout -> (M, 4) int32, 1 where a thread's columns
        of a row hold a NaN. A thread holds columns 8 k + 2 t + b of its rows (k, b its registers,
        t its lane in the row's quad: ``sm90_common.where_words``), so reducing over k and b stays
        in the thread's registers: no shuffle, shared memory or barrier."""
        M: gl.constexpr = o.shape[0]
        N: gl.constexpr = o.shape[1]
        bad = gl.where(o != o, 1, 0).reshape([M, N // 8, 4, 2])
        return gl.max(gl.max(bad, 3), 1)

    @gluon.jit
    def _kv(bufs, i, BLOCK_N: gl.constexpr, BLOCK_D: gl.constexpr):
        """Ring buffer i as the (BLOCK_N, BLOCK_D) matrix the tensor cores read."""
        return bufs.index(i).reshape([BLOCK_N, BLOCK_D])

    @gluon.jit
    def _attn_fwd_sm90(
        Q, K, V, O, LSE, ACC, M, L, SCHED, PROG_PTR, PROG_ITEMS,
        FULL_PTR, FULL_IDX, PART_PTR, PART_IDX, BITMAPS, Q_ORDER,
        sqb, sqh, sqm, skb, skh, skn, svb, svh, svn, sob, soh, som,
        B, H, GROUP, Lq, Lk, D, D_TMA, map_sb, map_sh, n_qt, n_bh, section, n_items, n_splits, scale,
        Q_SMEM: gl.constexpr, KV_SMEM: gl.constexpr, TILE_Q: gl.constexpr, TILE_K: gl.constexpr,
        BLOCK_N: gl.constexpr, BLOCK_D: gl.constexpr, NUM_STAGES: gl.constexpr, SCALE_SIGN: gl.constexpr,
        CONSUMER_REGS: gl.constexpr, PACKED: gl.constexpr, PASSES: gl.constexpr, THREAD_RELEASE: gl.constexpr,
        SCHEDULE: gl.constexpr,
    ):
        dtype: gl.constexpr = Q.dtype.element_ty
        # one descriptor per operand over the whole (B, H, L, D_TMA) tensor, made once: rows
        # past L read as zeros within each (batch, head). PACKED: Q as (B, 1, H * Lq, D_TMA)
        # (its heads and rows merge: sqh == Lq * sqm), rows past H * Lq read as zeros
        if PACKED:
            q_desc = tma.make_tensor_descriptor(Q, shape=[B, 1, H * Lq, D_TMA], strides=[sqb, sqb, sqm, 1],
                                                block_shape=[1, 1, HALF_M, BLOCK_D], layout=Q_SMEM)
        else:
            q_desc = tma.make_tensor_descriptor(Q, shape=[B, H, Lq, D_TMA], strides=[sqb, sqh, sqm, 1],
                                                block_shape=[1, 1, HALF_M, BLOCK_D], layout=Q_SMEM)
        k_desc = tma.make_tensor_descriptor(K, shape=[B, H // GROUP, Lk, D_TMA], strides=[skb, skh, skn, 1],
                                            block_shape=[1, 1, BLOCK_N, BLOCK_D], layout=KV_SMEM)
        v_desc = tma.make_tensor_descriptor(V, shape=[B, H // GROUP, Lk, D_TMA], strides=[svb, svh, svn, 1],
                                            block_shape=[1, 1, BLOCK_N, BLOCK_D], layout=KV_SMEM)
        q_buf = gl.allocate_shared_memory(dtype, [2, 1, 1, HALF_M, BLOCK_D], Q_SMEM)
        k_buf = gl.allocate_shared_memory(dtype, [NUM_STAGES, 1, 1, BLOCK_N, BLOCK_D], KV_SMEM)
        v_buf = gl.allocate_shared_memory(dtype, [NUM_STAGES, 1, 1, BLOCK_N, BLOCK_D], KV_SMEM)
        q_ready = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
        q_empty = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
        v_land = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
        done = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
        redo_flag = gl.allocate_shared_memory(gl.int32, [1], gl.SwizzledSharedLayout(1, 1, 1, [0]))
        item_buf = gl.allocate_shared_memory(gl.int32, [1], gl.SwizzledSharedLayout(1, 1, 1, [0]))
        item_ready = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
        item_free = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
        k_ready = gl.allocate_shared_memory(gl.int64, [NUM_STAGES, 1], mbarrier.MBarrierLayout())
        v_ready = gl.allocate_shared_memory(gl.int64, [NUM_STAGES, 1], mbarrier.MBarrierLayout())
        k_empty = gl.allocate_shared_memory(gl.int64, [NUM_STAGES, 1], mbarrier.MBarrierLayout())
        v_empty = gl.allocate_shared_memory(gl.int64, [NUM_STAGES, 1], mbarrier.MBarrierLayout())
        # the ping-pong's two barriers as two allocations: shared-memory hazard tracking works per
        # allocation, so one waited on and the other arrived on in turn need no bar.sync between
        turn0 = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
        turn1 = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
        ARRIVALS: gl.constexpr = 128 if THREAD_RELEASE else 1  # per consumer ``signal``
        mbarrier.init(q_ready, count=1)
        mbarrier.init(q_empty, count=2 * ARRIVALS)  # released by both consumers
        mbarrier.init(v_land, count=1)
        mbarrier.init(done, count=2)  # both consumers finished pass 0
        redo_flag.store(gl.zeros([1], gl.int32, gl.BlockedLayout([1], [32], [gl.num_warps()], [0])))
        for i in gl.static_range(NUM_STAGES):
            mbarrier.init(k_ready.index(i), count=1)
            mbarrier.init(v_ready.index(i), count=1)
            mbarrier.init(k_empty.index(i), count=2 * ARRIVALS)
            mbarrier.init(v_empty.index(i), count=2 * ARRIVALS)
        mbarrier.init(turn0, count=ARRIVALS)
        mbarrier.init(turn1, count=ARRIVALS)
        mbarrier.init(item_ready, count=1)
        mbarrier.init(item_free, count=2)  # read by both consumers

        c = scale * 1.4426950408889634
        gl.warp_specialize([
            (_producer, (q_desc, k_desc, v_desc, q_buf, k_buf, v_buf, q_ready, q_empty, k_ready, k_empty, v_ready,
                         v_empty, v_land, done, redo_flag, SCHED, PROG_PTR, PROG_ITEMS, item_buf, item_ready,
                         item_free, n_items, n_bh, section, H, GROUP, Lq, map_sb, map_sh, n_qt, n_splits, Q_ORDER,
                         FULL_PTR, PART_PTR, FULL_IDX, PART_IDX, TILE_Q, TILE_K, BLOCK_N, BLOCK_D, PACKED, PASSES,
                         SCHEDULE)),
            (_consumer, (0, q_buf, k_buf, v_buf, q_ready, q_empty, k_ready, k_empty, v_ready, v_empty, turn0, turn1,
                         done, redo_flag, SCHED, PROG_PTR, PROG_ITEMS, item_buf, item_ready, item_free, O, LSE, ACC,
                         M, L, n_items, n_bh, section, H, GROUP, map_sb, map_sh, n_qt, n_splits, Q_ORDER, FULL_PTR,
                         PART_PTR, BITMAPS, sob, soh, som, Lq, D, D_TMA, c, TILE_Q, TILE_K, BLOCK_N, BLOCK_D,
                         SCALE_SIGN, PACKED, PASSES, THREAD_RELEASE, SCHEDULE)),
            (_consumer, (1, q_buf, k_buf, v_buf, q_ready, q_empty, k_ready, k_empty, v_ready, v_empty, turn1, turn0,
                         done, redo_flag, SCHED, PROG_PTR, PROG_ITEMS, item_buf, item_ready, item_free, O, LSE, ACC,
                         M, L, n_items, n_bh, section, H, GROUP, map_sb, map_sh, n_qt, n_splits, Q_ORDER, FULL_PTR,
                         PART_PTR, BITMAPS, sob, soh, som, Lq, D, D_TMA, c, TILE_Q, TILE_K, BLOCK_N, BLOCK_D,
                         SCALE_SIGN, PACKED, PASSES, THREAD_RELEASE, SCHEDULE)),
    ], [4, 4], [CONSUMER_REGS, CONSUMER_REGS])


def supported(q: torch.Tensor, bm: BlockMap, d_tma: int, softcap) -> bool:
    """Can the Hopper kernel run this forward? sm_90, fp16/bf16, padded head dim of at most 256
    (``HEAD_CONFIGS``), no softcap, query tiles of a multiple of 128 rows and key tiles of >= 64 keys."""
    if not (ENABLED and eligible(q, softcap)):
        return False
    return d_tma <= HEAD_CONFIGS[-1][0] and bm.block_q % 128 == 0 and bm.block_k >= 64


def head_config(d_tma: int, block_k: int) -> tuple[int, int, int]:
    """(BLOCK_D, BLOCK_N, ring stages) for a padded head dim ``d_tma`` and key tiles of ``block_k``."""
    for block_d, block_n, stages in HEAD_CONFIGS:
        if d_tma <= block_d:
            return block_d, min(block_n, block_k), stages
    raise ValueError(f"head dim: expected at most {HEAD_CONFIGS[-1][0]} on the Hopper forward, got {d_tma}")


# Every map runs a persistent grid (one program per SM walking items), so the producer loads the
# next item while the consumers finish the current one. Maps with short rows on average take a
# static share (work lists) with the NaN redo pass; the others (causal, Longformer's global rows)
# take items in heaviest-first order from a counter (``sm90_schedule``), since a static share of long items
# leaves a tail that grows with the rows. H200, session 19, against one program per item: the
# snake on causal 8k / 16k / 32k / 128k 1.09x / 1.00x / 0.95x / 0.90x, the counter 1.07x /
# 1.00x / 1.01-1.02x / 1.04-1.07x (Longformer 8k 1.00-1.02x, but 32k 0.96x); the counter on
# short rows 0.81-0.98x (it cleans V), the snake there 1.00-1.07x over plain striding (the snake
# gave way to work lists in session 25).
STATIC_MAX_MEAN_TILES = 16


def dynamic_schedule(bm: BlockMap, heads_per_group: int) -> bool:
    """Do the programs take items from a counter (True) or a static share (False)? Static for
    maps whose rows' mean non-empty tile count is at most ``STATIC_MAX_MEAN_TILES`` unless one row
    outlasts a program slot (``is_row_bound``, one program of this kernel per SM)."""
    rows = bm.batch * bm.heads * bm.n_q_tiles
    if bm.nonempty_tiles > STATIC_MAX_MEAN_TILES * rows:
        return True
    return is_row_bound(bm.max_row_tiles, bm.nonempty_tiles, heads_per_group, bm.full_ptr.device, per_sm=1)


def sm90_forward(q, k, v, out, lse, bm: BlockMap, scale: float, d: int, d_tma: int, map_sb: int, map_sh: int):
    """q: (B, Hq, Lq, d_tma), k/v: (B, Hkv, Lk, d_tma), TMA-ready (``tma.tma_operand``);
    writes out (B, Hq, Lq, d) and lse (B, Hq, Lq) fp32 natural log. Returns the launch as
    ((compiled, grid, args, constexprs), slot of the schedule counter or None) for
    ``plans.ForwardPlan``."""
    b, hq, lq, _ = q.shape
    n_items = b * hq * bm.n_q_tiles * (bm.block_q // 128)
    dynamic = dynamic_schedule(bm, b * hq // (bm.batch * bm.heads))
    grid = (max(1, min(n_items, sm_count(q.device))),)
    sched = torch.zeros(1, dtype=torch.int32, device=q.device) if dynamic else None
    lists = None if dynamic else program_lists(bm, b, hq, hq // k.shape[1], map_sb, map_sh, grid[0])
    section = counter_section(bm, b, hq, hq // k.shape[1], k.shape[2], d_tma, q.element_size(), grid[0]) \
        if dynamic else None
    # the NaN redo pass needs each program's items known up front: static schedule only; the
    # dynamic one cleans V of partial tiles, as one program per item did on these maps before
    compiled, args, constexprs = launch_sm90(grid, q, k, v, out, lse, (lse, lse, lse), bm, scale, d, d_tma, map_sb,
                                             map_sh, bm.n_q_tiles, n_items, 1, packed=False,
                                             passes=1 if dynamic else 2, thread_release=True, sched=sched,
                                             lists=lists, section=section)
    return (compiled, grid, args, constexprs), (SCHED_SLOT if dynamic else None)


def counter_section(bm: BlockMap, batch: int, heads: int, group: int, lk: int, d_tma: int, elt_size: int,
                    n_programs: int) -> int:
    """Query heads per section of the counter schedule's item order (``_item``): whole KV heads
    (``group`` query heads each) whose K and V fit the L2 together (``sm90_schedule.l2_section``),
    so that the programs running at one moment read a few heads' K / V rows instead of every
    head's: causal 32k, rank-major over 16 heads, moves ~4.2 GB from DRAM against ~0.27 GB in
    sections of two heads (``l2_traffic_model``-style estimate, ``session27/counter_order_model.py``)."""
    group_work = group * bm.nonempty_tiles / (bm.batch * bm.heads)
    return group * l2_section(batch * heads // group, 2 * lk * d_tma * elt_size, group_work, bm.max_row_tiles,
                              n_programs)


SCHED_SLOT = 8  # position of the schedule counter in ``launch_sm90``'s kernel arguments

# ``item_costs``: work of a full / partial key tile (per key block of ``BLOCK_N`` keys) and of an
# item's own start and end, in full key blocks. A partial tile ~1.3 full ones: treating partial
# tiles as full sped the forward up 1.05-1.07x on documents, where ~20% of the tiles are partial
# (H200, session 10); the per-item cost is a guess (Q load and O store, mostly overlapped on the
# persistent grid)
_FULL_COST, _PARTIAL_COST, _ITEM_COST = 1.0, 1.3, 1.0
_LISTS = "_fwd_sm90_lists"  # the map's cached work lists (``program_lists``)


def program_lists(bm: BlockMap, batch: int, heads: int, group: int, map_sb: int, map_sh: int,
                  n_programs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Work lists (``work_lists.map_lists``) of a persistent launch of ``n_programs`` over the
    items of ``_item`` (``batch * heads`` query heads, ``group`` of them per KV head), balanced
    by ``item_costs`` in the locality order of ``item_positions``: the items that run at one
    moment are then a few neighbouring query tiles of every head, which read the same K / V rows
    of their head. Heaviest first across all heads (the snake), they read unrelated rows: on
    documents 32k (16 heads) the K / V bytes the forward reads without reuse, 3.3 GB, take about
    as long at the H100's bandwidth as the whole forward did (~0.99 ms, session 24). H100, session
    26, against the snake: documents 32k 1.17x, tree 32k / 8k 1.13x / 1.12x, documents 8k 1.06x,
    sliding 32k 1.01x, GQA 32:8 documents 32k 1.04x."""
    n_items = batch * heads * bm.n_q_tiles * (bm.block_q // 128)

    def estimate():
        rows, parts = _ranked_rows(bm, batch, heads, map_sb, map_sh)  # read back once for both
        return _row_costs(bm)[rows], _locality(bm, heads, *parts)

    return work_lists.map_lists(bm, _LISTS, (batch, heads, group, n_programs), n_items, n_programs, estimate)


def item_costs(bm: BlockMap, batch: int, heads: int, map_sb: int, map_sh: int) -> np.ndarray:
    """(n_items,) estimated work of each item of ``_item`` (item ``t``: rank ``t // (batch *
    heads)`` of (b, h) = ``t % (batch * heads)``, 128-row slices of the query tiles in
    ``q_order``), in full key blocks: its full and partial tiles' blocks plus the item's own
    start and end. Reads the map back (a device sync)."""
    rows, _ = _ranked_rows(bm, batch, heads, map_sb, map_sh)
    return _row_costs(bm)[rows]


def _row_costs(bm: BlockMap) -> np.ndarray:
    """(rows of the map,) the ``item_costs`` of each map row's query tile."""
    n_rows = bm.batch * bm.heads * bm.n_q_tiles
    full, part = (torch.diff(p[:n_rows + 1]).cpu().numpy() for p in (bm.full_ptr, bm.part_ptr))
    blocks_per_tile = bm.block_k // min(128, bm.block_k)
    return blocks_per_tile * (_FULL_COST * full + _PARTIAL_COST * part) + _ITEM_COST


def item_positions(bm: BlockMap, batch: int, heads: int, group: int, map_sb: int, map_sh: int) -> np.ndarray:
    """(n_items,) each item's place in the locality order (batch, query tile, query head, 128-row
    slice), indexed by item number as ``item_costs``: the query heads of a KV head are neighbours
    (they read the same K / V rows), and every head's query tile ``qt`` comes before any head's
    ``qt + 1``, so the programs running at one moment spread over all heads. Ordered head by head
    instead (batch, KV head, query tile, ...), 132 programs read the same few K / V tiles of one
    head at once: H100, session 26, that order lost 3-15% to this one on sliding 32k, tree 8k /
    32k and documents 8k (``session26/orders_fwd.log``). Reads the map's query order back."""
    _, parts = _ranked_rows(bm, batch, heads, map_sb, map_sh)
    return _locality(bm, heads, *parts)


def _locality(bm: BlockMap, heads: int, b, h, qt, part) -> np.ndarray:
    """``item_positions`` from each item's (b, h, query tile, slice)."""
    return ((b * bm.n_q_tiles + qt) * heads + h) * (bm.block_q // 128) + part


def _ranked_rows(bm: BlockMap, batch: int, heads: int, map_sb: int, map_sh: int):
    """Map row of every item (numbered as ``_item`` numbers them), and its (b, h, query tile,
    128-row slice of that tile)."""
    slices = bm.block_q // 128
    t = np.arange(batch * heads * bm.n_q_tiles * slices)
    bh, rank = t % (batch * heads), t // (batch * heads)
    b, h = bh // heads, bh % heads
    g = b * map_sb + h * map_sh  # the (batch, head) map group the item reads
    qt = bm.q_order.cpu().numpy().astype(np.int64)[g, rank // slices]
    return g * bm.n_q_tiles + qt, (b, h, qt, rank % slices)


def launch_sm90(grid, q, k, v, out, lse, partials, bm: BlockMap, scale: float, d: int, d_tma: int, map_sb: int,
                map_sh: int, n_qt: int, n_items: int, n_splits: int, packed: bool, passes: int,
                thread_release: bool = False, sched: torch.Tensor | None = None,
                lists: tuple[torch.Tensor, torch.Tensor] | None = None, section: int | None = None):
    """One launch of the kernel: the ordinary forward (writes out, lse), or with ``packed`` the
    split-KV items of ``flash_decode_sm90`` (write ``partials`` = (acc, m, l); ``n_qt``: row
    blocks of packed rows per KV head). ``passes``: 2 to hand V of partial tiles over uncleaned
    and redo the program's items with cleaning if an output met a NaN, 1 to always clean.
    ``thread_release``: consumers release K/V/Q buffers and hand the tensor cores over with
    every thread's arrive instead of a warpgroup barrier and one thread's (``sm90_common.signal``).
    The schedule (``sm90_schedule``): ``sched``, a zeroed int32 counter from which the programs
    take their items; else ``lists`` = (ptr, items), each program's work list
    (``work_lists.py``); else one item per program (``grid`` = items). ``section``: query heads
    per section of the item order (``counter_section``; None: all, plain heaviest-first order,
    which the lists' costs and positions assume).
    Returns (compiled kernel, arguments, constexprs) as launched, for ``relaunch.Relaunch``."""
    b, hq, lq, _ = q.shape
    block_d, block_n, stages = head_config(d_tma, bm.block_k)
    schedule = "counter" if sched is not None else "lists" if lists is not None else "one_each"
    # pointers the schedule never reads: any int32 tensor stands in
    sched = bm.q_order if sched is None else sched
    prog_ptr, prog_items = (bm.q_order, bm.q_order) if lists is None else lists
    args = (q, k, v, out, lse, *partials, sched, prog_ptr, prog_items, bm.full_ptr, bm.full_idx, bm.part_ptr,
            bm.part_idx, bm.bitmaps, bm.q_order,
            *q.stride()[:3], *k.stride()[:3], *v.stride()[:3], *out.stride()[:3],
            b, hq, hq // k.shape[1], lq, k.shape[2], d, d_tma, map_sb, map_sh, n_qt, b * hq,
            b * hq if section is None else section, n_items, n_splits, scale)
    constexprs = dict(
        Q_SMEM=smem_layout((1, 1, 64, block_d), q.dtype), KV_SMEM=smem_layout((1, 1, block_n, block_d), q.dtype),
        TILE_Q=bm.block_q, TILE_K=bm.block_k, BLOCK_N=block_n, BLOCK_D=block_d, NUM_STAGES=stages,
        SCALE_SIGN=(scale > 0) - (scale < 0), CONSUMER_REGS=_CONSUMER_REGS, PACKED=packed, PASSES=passes,
        THREAD_RELEASE=thread_release, SCHEDULE=schedule)
    # 3 warpgroups: 168 registers a thread on average = 232 + 232 + 40
    compiled = _attn_fwd_sm90[grid](*args, **constexprs, num_warps=4,
                                    maxnreg=(2 * _CONSUMER_REGS + _PRODUCER_REGS) // 3)
    return compiled, args, constexprs
