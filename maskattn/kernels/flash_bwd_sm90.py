"""Hopper backward kernel (Gluon, warp-specialized): dK, dV and dQ in one pass over the map's
column view, dQ added with fp32 TMA reduce-adds (FlashAttention-3's backward: 5 matrix
products per tile pair instead of the portable path's 7).

A work item is one key tile of 128 keys of one (batch, KV head), items numbered heaviest first.
Maps whose key tiles see few query tiles (``short_columns``: sliding windows, documents, causal
up to ~10k) run on a persistent grid, one program per SM walking a list of items balanced by
estimated cost and ordered so that the programs running at one moment work on neighbouring key
tiles of one head, which share their Q / dO rows in L2 (``program_lists``, ``work_lists.py``);
the others one program per item, numbered heaviest first within sections of a few KV heads whose
query rows fit the L2 (``column_section``). A program has three warpgroups:

* **producer** (few registers): TMA loads of the tile's K and V once, then, for every query
  head that shares the KV head and every non-empty query tile of the map's column view,
  64-row blocks of Q and dO with their lse and delta into a ring of ``STAGES`` buffers.
* **two consumers** (64 keys each) compute per query block

      S^T = K Q^T,  dP^T = V dO^T,  P^T = exp2(S^T * c - lse),  dS^T = P^T (dP^T - delta),
      dV += P^T dO,  dK += dS^T Q   (P^T, dS^T as register operands; GQA summed in registers)

  (a partial tile's mask bits come from its key-major bitmap, ``column_bitmaps.py``: each
  thread loads its four words before the block's products), then hand dS^T to each other
  through shared memory (two slots, mbarriers) and each
  computes dQ for half of the dims over all 128 keys, dQ[:, dims] = dS K[:, dims], which
  goes to shared memory and from there into the fp32 dQ accumulator with one TMA
  reduce-add per block (the copy engine clips rows past Lq). At the end of a key tile dK and dV
  leave by TMA stores, staged in the dS and dQ buffers (``_store_dkdv``).

The order of the fp32 additions into dQ varies from run to run, so this path is not bitwise
reproducible; ``attention(..., deterministic=True)`` (or torch's deterministic flag) takes the
portable kernels. dQ multiplies K by dS, which is 0 for masked pairs, and 0 * NaN would leak
a masked-out non-finite key: each consumer zeroes the non-finite entries of the K dims it
multiplies in shared memory once per key tile (``sm90_common.zero_non_finite``; a pass over K
in the preparation launch took 268 MB of memory traffic at 32k keys, 16 heads, head dim 128).
The other consumer may read those entries for S^T meanwhile, either value: a non-finite key is
either masked (S dropped by ``where``) or allowed, and then the forward's row is NaN already.
Masked pairs are dropped with ``where``.

Extra memory: the dQ accumulator, 4 bytes x head dim (padded to 16 bytes) per (query head,
token), and lse / delta padded to 64 rows.

Used on sm_90 for fp16/bf16, head dims 64 and 128, no softcap, 128 x 128 tiles (the default), on maps
of several query tiles that are not bound by their busiest column (``supported``); everything
else runs the portable kernels (``backward.py``), except head dims 129-256, which take
``flash_bwd_sm90_wide`` (it shares this module's producer, block gradients and map checks).
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from ..block_map import BlockMap
from . import plans, split_columns, work_lists
from .column_bitmaps import column_bitmaps
from .config import is_row_bound, sm_count
from .sm90_common import HAVE_GLUON, eligible, smem_layout
from .sm90_schedule import l2_section

if HAVE_GLUON:
    from triton._C.libtriton import ir
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl
    from triton.experimental.gluon.language._core import builtin
    from triton.experimental.gluon.language.nvidia.hopper import (
        fence_async_shared, mbarrier, tma, warpgroup_mma, warpgroup_mma_wait)

    from .sm90_common import key_major_words, signal, where_words, zero_non_finite
    from .sm90_schedule import listed_items, section_item

ENABLED = True
STAGES = 3  # Q / dO blocks in the ring (H200, session 9: 1-3% faster than 2; 226 KB of shared memory)
# padded head dims the kernel runs: dQ is split between the consumers by dims (64 or 32 each)
HEAD_DIMS = (64, 128)
_CONSUMER_REGS, _PRODUCER_REGS = 240, 24
# persistent grid up to this many query tiles per key tile on average (``short_columns``; H200, session 20:
# +7% on causal 8k at 32.5, 1.00x on causal 32k at 128, 0.82x on causal 128k at 512)
PERSISTENT_MAX_MEAN_TILES = 40
# ``item_costs``: work of a full / partial query tile and of an item's own start and end, in 64-row blocks
_FULL_COST, _PARTIAL_COST, _ITEM_COST = 2.0, 3.2, 2.0
_LISTS = "_bwd_sm90_lists"  # the map's cached work lists (``program_lists``)
_SPLITS = "_bwd_sm90_splits"  # the map's cached lists of cut key tiles (``split_lists``)
_DKV_ACC_SLOT = 18  # the cut tiles' accumulator among ``backward_sm90``'s launch arguments (replays fill it)

if HAVE_GLUON:
    HALF = gl.constexpr(64)  # keys per consumer warpgroup, and query rows per block

    @builtin
    def _tma_reduce_add(tensor_desc, coord, src, _semantic=None):
        """Add shared-memory tile ``src`` into the global block at ``coord`` of ``tensor_desc``
        (one TMA reduce-add, ``cp.reduce.async.bulk.tensor``; completion as for TMA stores,
        ``tma.store_wait``). Triton 3.6's builder has the op; Gluon exposes no wrapper for it."""
        coord = _semantic._convert_to_ir_values(coord, require_i64=False)
        _semantic.builder.create_async_tma_reduce(ir.DESCRIPTOR_REDUCE_KIND.ADD, tensor_desc.handle, coord,
                                                  src.handle)

    @gluon.jit
    def _key_tile(t, n_bk, section, Hkv, GROUP, map_sb, map_sh, n_kt, K_ORDER):
        """Work item t (rank-major, every KV head's heaviest key tiles first, within sections of
        ``section`` (batch, KV head) pairs: ``sm90_schedule.section_item``) -> (b, KV head, key tile)."""
        bk, rank = section_item(t, n_bk, section, n_kt)
        b = bk // Hkv
        kvh = bk % Hkv
        kt = gl.load(K_ORDER + (b * map_sb + kvh * GROUP * map_sh) * n_kt + rank)
        return b, kvh, kt

    @gluon.jit
    def _work_item(PROG_ITEMS, i, PARTS, SPLIT: gl.constexpr):
        """Entry i of the work lists -> (item number, first and stop block of the item's flattened
        query blocks, dK / dV slot). With SPLIT the entry names a part (``split_columns``: a row of
        ``PARTS``); without, the entry is the item itself, whole."""
        e = gl.load(PROG_ITEMS + i)
        if SPLIT:
            return gl.load(PARTS + 4 * e), gl.load(PARTS + 4 * e + 1), gl.load(PARTS + 4 * e + 2), gl.load(
                PARTS + 4 * e + 3)
        else:
            return e, 0, 0, -1

    @gluon.jit
    def _part_blocks(n, base, lo, hi, SPLIT: gl.constexpr):
        """The blocks [j0, j1) of one query head's column (n blocks: the item's flattened blocks
        [base, base + n)) inside the part's [lo, hi); the whole column without SPLIT."""
        if SPLIT:
            return gl.minimum(gl.maximum(lo - base, 0), n), gl.maximum(gl.minimum(hi - base, n), 0)
        else:
            return 0, n

    @gluon.jit
    def _kind_blocks(KIND: gl.constexpr, nf, j0, j1, SPLIT: gl.constexpr):
        """Of a column's blocks [j0, j1) (``_part_blocks``), those of full tiles (KIND 0: below nf)
        or of partial ones (KIND 1)."""
        if KIND == 0:
            if SPLIT:
                return j0, gl.minimum(nf, j1)
            else:
                return j0, nf
        else:
            if SPLIT:
                return gl.maximum(nf, j0), j1
            else:
                return nf, j1

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
            return _block_of(True, j, f0, nf, p0, T_FULL_IDX, T_PART_IDX, TILE_Q, SUB_M)
        else:
            return _block_of(False, j, f0, nf, p0, T_FULL_IDX, T_PART_IDX, TILE_Q, SUB_M)

    @gluon.jit
    def _block_of(FULL: gl.constexpr, j, f0, nf, p0, T_FULL_IDX, T_PART_IDX, TILE_Q: gl.constexpr,
                  SUB_M: gl.constexpr):
        """``_query_block`` of a block known to be of a full (or a partial) tile."""
        if FULL:
            e = f0 + j // SUB_M
            qt = gl.load(T_FULL_IDX + e)
        else:
            e = p0 + (j - nf) // SUB_M
            qt = gl.load(T_PART_IDX + e)
        r0 = (j % SUB_M) * HALF
        return qt * TILE_Q + r0, r0, e

    @gluon.jit
    def _bwd_producer(q_desc, do_desc, k_desc, v_desc, lse_desc, delta_desc, q_buf, do_buf, k_buf, v_buf,
                      lse_buf, delta_buf, kv_ready, kv_empty, qd_ready, qd_empty, PROG_PTR, PROG_ITEMS, n_bk, section,
                      Hq, Hkv, GROUP, Lq_stat, map_sb, map_sh, n_kt, K_ORDER, T_FULL_PTR, T_FULL_IDX, T_PART_PTR,
                      T_PART_IDX, PARTS, TILE_Q: gl.constexpr, TILE_K: gl.constexpr, KEY_PASSES: gl.constexpr,
                      SPLIT: gl.constexpr):
        """Loads of every listed key tile: its K and V, then the Q / dO blocks (with lse and delta) of
        its column, for each query head of its KV head (with SPLIT, of the listed part of it).
        ``KEY_PASSES``: 1, the tile's 128 keys at once (two 64-key halves in ``k_buf`` / ``v_buf``);
        2, one half at a time, the column walked once per half (``flash_bwd_sm90_wide``)."""
        SUB_M: gl.constexpr = TILE_Q // HALF
        NUM: gl.constexpr = q_buf.type.shape[0]
        HALVES: gl.constexpr = 2 // KEY_PASSES  # 64-key halves per K / V load
        kv_bytes: gl.constexpr = 2 * HALVES * k_desc.block_type.nbytes
        it = 0  # query blocks loaded so far (ring slot and phase)
        ki = 0  # K / V loads so far
        first, count = listed_items(PROG_PTR)  # this program's work list (work_lists.py)
        for r in range(count):
            t, lo, hi, slot = _work_item(PROG_ITEMS, first + r, PARTS, SPLIT)
            b, kvh, kt = _key_tile(t, n_bk, section, Hkv, GROUP, map_sb, map_sh, n_kt, K_ORDER)
            for kp in gl.static_range(KEY_PASSES):
                n0 = kt * TILE_K + kp * HALF
                mbarrier.wait(kv_empty, (ki & 1) ^ 1)  # both consumers are done with the previous keys
                mbarrier.expect(kv_ready, kv_bytes)
                for w in gl.static_range(HALVES):
                    tma.async_copy_global_to_shared(k_desc, [b, kvh, n0 + w * HALF, 0], kv_ready, k_buf.index(w))
                    tma.async_copy_global_to_shared(v_desc, [b, kvh, n0 + w * HALF, 0], kv_ready, v_buf.index(w))
                ki += 1
                base = 0  # the item's flattened blocks before this query head's
                for hg in range(GROUP):
                    h = kvh * GROUP + hg
                    f0, nf, p0, n = _column(b, h, kt, map_sb, map_sh, n_kt, T_FULL_PTR, T_PART_PTR, SUB_M)
                    j0, j1 = _part_blocks(n, base, lo, hi, SPLIT)
                    base += n
                    for j in range(j0, j1):
                        m0, r0, e = _query_block(j, f0, nf, p0, T_FULL_IDX, T_PART_IDX, TILE_Q, SUB_M)
                        s = it % NUM
                        mbarrier.wait(qd_empty.index(s), ((it // NUM) & 1) ^ 1)
                        mbarrier.expect(qd_ready.index(s),
                                        2 * q_desc.block_type.nbytes + 2 * lse_desc.block_type.nbytes)
                        tma.async_copy_global_to_shared(q_desc, [b, h, m0, 0], qd_ready.index(s), q_buf.index(s))
                        tma.async_copy_global_to_shared(do_desc, [b, h, m0, 0], qd_ready.index(s), do_buf.index(s))
                        stat = (b * Hq + h) * Lq_stat + m0
                        tma.async_copy_global_to_shared(lse_desc, [stat], qd_ready.index(s), lse_buf.index(s))
                        tma.async_copy_global_to_shared(delta_desc, [stat], qd_ready.index(s), delta_buf.index(s))
                        it += 1

    @gluon.jit
    def _grads(st, dpt_tok, lse2, delta_smem, c, words, S_LAYOUT: gl.constexpr, MASKED: gl.constexpr):
        """P^T and dS^T of a block from the raw scores S^T (waits for dP^T, still in flight;
        delta read from shared memory only then). ``words``: with MASKED, the block's key-major
        words (``key_major_words``: queries [0, 32) and [32, 64) of each key row)."""
        p = gl.exp2(st * c - lse2[None, :])
        if MASKED:
            lo, hi = words
            p = where_words(p, lo, hi, lo, hi, 0.0)
        dpt = warpgroup_mma_wait(0, deps=[dpt_tok])
        delta = delta_smem.load(gl.SliceLayout(0, S_LAYOUT))
        ds = p * (dpt - delta[None, :])
        if MASKED:  # dP of a masked pair may be NaN (a NaN value): drop it, don't multiply
            ds = where_words(ds, lo, hi, lo, hi, 0.0)
        return p, ds

    @gluon.jit
    def _dq_block(WG: gl.constexpr, ds, u, ds_buf, ds_ready, ds_free, k_buf, DQ_LAYOUT: gl.constexpr,
                  BLOCK_D: gl.constexpr):
        """Issue this warpgroup's half of dQ += dS K for a query block: dS^T (its 64 keys) goes
        to shared memory, and once the other warpgroup's half is there too, dims
        [n WG, n WG + n) of dQ (64 rows; n = BLOCK_D / 2) = sum over both key halves of
        dS_half K_half[:, dims]. ``u``: query blocks done so far (double-buffered dS slots)."""
        DQ_N: gl.constexpr = BLOCK_D // 2
        slot = u % 2
        ph = (u // 2) & 1
        mbarrier.wait(ds_free.index(slot), ph ^ 1)  # both dQ products of block u - 2 are done
        ds_buf.index(2 * WG + slot).store(ds)
        fence_async_shared()
        gl.thread_barrier()  # every thread's part stored before the one-thread arrive
        mbarrier.arrive(ds_ready.index(slot), count=1)
        mbarrier.wait(ds_ready.index(slot), ph)
        zero = gl.zeros([HALF, DQ_N], gl.float32, layout=DQ_LAYOUT)
        k0 = k_buf.index(0).reshape([HALF, BLOCK_D]).slice(WG * DQ_N, DQ_N, dim=1)
        k1 = k_buf.index(1).reshape([HALF, BLOCK_D]).slice(WG * DQ_N, DQ_N, dim=1)
        tok = warpgroup_mma(ds_buf.index(slot).permute((1, 0)), k0, zero, use_acc=False, is_async=True)
        return warpgroup_mma(ds_buf.index(2 + slot).permute((1, 0)), k1, tok, is_async=True)

    @gluon.jit
    def _block_grads(FULL: gl.constexpr, j, it, key0, f0, nf, p0, kb, vb, q_buf, do_buf, lse_buf, delta_buf,
                     qd_ready, COL_BITS, T_FULL_IDX, T_PART_IDX, Lq, c, S_LAYOUT: gl.constexpr, TILE_Q: gl.constexpr,
                     TILE_K: gl.constexpr, BLOCK_D: gl.constexpr):
        """The start of a query block's work in both Hopper backwards: query block j of the column (the
        ``it``-th block of this program) against the tile's keys [key0, key0 + 64), whose K and V are
        ``kb`` and ``vb`` -> (P^T, dS^T in the inputs' dtype, first query row, ring slot of Q / dO).
        Waits for the block's loads. FULL: the block's tile is full (no mask)."""
        SUB_M: gl.constexpr = TILE_Q // HALF
        NUM: gl.constexpr = q_buf.type.shape[0]
        s_zero = gl.zeros([HALF, HALF], gl.float32, layout=S_LAYOUT)
        m0, r0, e = _block_of(FULL, j, f0, nf, p0, T_FULL_IDX, T_PART_IDX, TILE_Q, SUB_M)
        if not FULL:  # the mask's words, loaded before the products so that their latency hides behind them
            bits_lo, bits_hi = key_major_words(COL_BITS, e, key0, r0, S_LAYOUT, HALF, TILE_Q, TILE_K)
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
        if FULL:
            p, ds = _grads(st, dpt_tok, lse2, delta_buf.index(s), c, None, S_LAYOUT, False)
        else:
            p, ds = _grads(st, dpt_tok, lse2, delta_buf.index(s), c, (bits_lo, bits_hi), S_LAYOUT, True)
        return p, ds.to(q_buf.dtype), m0, s

    @gluon.jit
    def _bwd_block(FULL: gl.constexpr, WG: gl.constexpr, j, it, b, h, f0, nf, p0, dk, dv, q_buf, do_buf, kb, vb,
                   k_buf, ds_buf, dq_buf, lse_buf, delta_buf, qd_ready, qd_empty, ds_ready, ds_free, dqa_desc,
                   COL_BITS, T_FULL_IDX, T_PART_IDX, Lq, c, scale, S_LAYOUT: gl.constexpr,
                   A_LAYOUT: gl.constexpr, DQ_LAYOUT: gl.constexpr, TILE_Q: gl.constexpr, TILE_K: gl.constexpr,
                   BLOCK_D: gl.constexpr):
        """Query block j of the column (the ``it``-th block of this program) -> dK, dV: dV += P^T dO,
        dK += dS^T Q, and dQ += dS K by a TMA reduce-add. FULL: the block's tile is full (no mask)."""
        dtype: gl.constexpr = q_buf.dtype
        p, ds, m0, s = _block_grads(FULL, j, it, WG * HALF, f0, nf, p0, kb, vb, q_buf, do_buf, lse_buf, delta_buf,
                                    qd_ready, COL_BITS, T_FULL_IDX, T_PART_IDX, Lq, c, S_LAYOUT, TILE_Q, TILE_K,
                                    BLOCK_D)
        qb = q_buf.index(s).reshape([HALF, BLOCK_D])
        dob = do_buf.index(s).reshape([HALF, BLOCK_D])
        dv_tok = warpgroup_mma(gl.convert_layout(p.to(dtype), A_LAYOUT), dob, dv, is_async=True)
        dk_tok = warpgroup_mma(gl.convert_layout(ds, A_LAYOUT), qb, dk, is_async=True)
        dq_tok = _dq_block(WG, ds, it, ds_buf, ds_ready, ds_free, k_buf, DQ_LAYOUT, BLOCK_D)
        dv, dk, dq = warpgroup_mma_wait(0, deps=[dv_tok, dk_tok, dq_tok])
        # releases after completed reads (wgmma waited, lse / delta loaded and used): every
        # thread arrives, no warpgroup bar.sync (H200, session 19: +1.1-2.7%; the dS hand-over
        # above publishes stores, so it keeps the barrier and one thread's arrive)
        signal(qd_empty.index(s), True)
        signal(ds_free.index(it % 2), True)
        # dQ rows [m0, m0 + 64) x this warpgroup's BLOCK_D / 2 dims += scale * dq: one TMA
        # reduce-add from shared memory (rows past Lq are clipped by the copy engine)
        tma.store_wait(0)  # the previous block's reduce has read the buffer
        dq_buf.index(WG).reshape([HALF, BLOCK_D // 2]).store(dq * scale)
        fence_async_shared()
        gl.thread_barrier()
        _tma_reduce_add(dqa_desc, [b, h, m0, WG * (BLOCK_D // 2)], dq_buf.index(WG))
        return dk, dv

    @gluon.jit
    def _store_dkdv(WG: gl.constexpr, dk, dv, u, ds_buf, dq_buf, ds_free, dk_desc, dv_desc, b, kvh, n0):
        """dK, dV (64 keys x BLOCK_D dims each, fp32 in registers) of this warpgroup's keys [n0, n0 + 64)
        -> global memory by two TMA stores, staged in this warpgroup's dS slots (dK) and dQ buffer
        (dV), which are free between key tiles: the other warpgroup's last dQ products (which read
        both warpgroups' dS, ``u``: blocks done so far) and this warpgroup's last dQ reduce-add have
        read them. The copy engine clips keys past Lk. The next write of either buffer waits for
        these stores (``tma.store_wait``). Plain stores from the wgmma layout wrote 4 bytes per
        thread and row, half of each 32-byte sector (H200, sliding 32k: the epilogue was ~10% of a
        consumer's time)."""
        if u > 0:
            mbarrier.wait(ds_free.index((u - 1) % 2), ((u - 1) // 2) & 1)
        tma.store_wait(0)
        dtype: gl.constexpr = dk_desc.dtype
        layout: gl.constexpr = dk_desc.layout
        # the same bytes as a (64, BLOCK_D) tile for the register store (same 128-byte swizzle); a
        # warpgroup's dQ buffer (64 x BLOCK_D / 2 fp32) holds exactly its dV tile
        FLAT: gl.constexpr = gl.NVMMASharedLayout(swizzle_byte_width=128, element_bitwidth=dtype.primitive_bitwidth,
                                                  rank=2)
        shape: gl.constexpr = dk_desc.block_type.shape
        dk_smem = ds_buf._reinterpret(dtype, [2] + shape, layout).index(WG)
        dv_smem = dq_buf.index(WG)._reinterpret(dtype, shape, layout)
        ds_buf._reinterpret(dtype, [2, HALF, dk.shape[1]], FLAT).index(WG).store(dk.to(dtype))
        dq_buf.index(WG)._reinterpret(dtype, [HALF, dv.shape[1]], FLAT).store(dv.to(dtype))
        fence_async_shared()
        gl.thread_barrier()
        tma.async_copy_shared_to_global(dk_desc, [b, kvh, n0, 0], dk_smem)
        tma.async_copy_shared_to_global(dv_desc, [b, kvh, n0, 0], dv_smem)

    @gluon.jit
    def _add_dkdv(WG: gl.constexpr, dk, dv, DKV_ACC, slot, O_LAYOUT: gl.constexpr, TILE_K: gl.constexpr,
                  BLOCK_D: gl.constexpr):
        """dK, dV (64 keys x BLOCK_D dims each, fp32 in registers) of this warpgroup's keys of a cut
        key tile -> added into its slot of the fp32 accumulator (slots, 2, TILE_K, BLOCK_D) (dK, then
        dV; ``split_columns``) by relaxed atomics: the other parts of the tile add theirs."""
        rows = WG * HALF + gl.arange(0, HALF, layout=gl.SliceLayout(1, O_LAYOUT))
        cols = gl.arange(0, BLOCK_D, layout=gl.SliceLayout(0, O_LAYOUT))
        at = DKV_ACC + (slot.to(gl.int64) * (2 * TILE_K) + rows[:, None]) * BLOCK_D + cols[None, :]
        gl.atomic_add(at, dk, sem="relaxed")
        gl.atomic_add(at + TILE_K * BLOCK_D, dv, sem="relaxed")

    @gluon.jit
    def _bwd_consumer(WG: gl.constexpr, q_buf, do_buf, k_buf, v_buf, ds_buf, dq_buf, lse_buf, delta_buf, kv_ready,
                      kv_empty, qd_ready, qd_empty, ds_ready, ds_free, dk_desc, dv_desc, dqa_desc, COL_BITS, PROG_PTR,
                      PROG_ITEMS, PARTS, DKV_ACC, n_bk, section, Hq, Hkv, GROUP, map_sb, map_sh, n_kt, K_ORDER,
                      T_FULL_PTR, T_FULL_IDX, T_PART_PTR, T_PART_IDX, Lq, c, scale, TILE_Q: gl.constexpr,
                      TILE_K: gl.constexpr, BLOCK_D: gl.constexpr, SPLIT: gl.constexpr):
        SUB_M: gl.constexpr = TILE_Q // HALF
        S_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                           instr_shape=[16, HALF, 16])
        O_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                           instr_shape=[16, BLOCK_D, 16])
        DQ_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                            instr_shape=[16, BLOCK_D // 2, 16])
        A_LAYOUT: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=O_LAYOUT, k_width=2)
        kb = k_buf.index(WG).reshape([HALF, BLOCK_D])
        vb = v_buf.index(WG).reshape([HALF, BLOCK_D])
        it = 0
        ki = 0
        first, count = listed_items(PROG_PTR)
        for r in range(count):
            t, lo, hi, slot = _work_item(PROG_ITEMS, first + r, PARTS, SPLIT)
            b, kvh, kt = _key_tile(t, n_bk, section, Hkv, GROUP, map_sb, map_sh, n_kt, K_ORDER)
            dk = gl.zeros([HALF, BLOCK_D], gl.float32, layout=O_LAYOUT)
            dv = gl.zeros([HALF, BLOCK_D], gl.float32, layout=O_LAYOUT)
            mbarrier.wait(kv_ready, ki & 1)
            ki += 1
            # K[:, this warpgroup's dQ dims] without non-finite entries (see the module docstring)
            for w in gl.static_range(2):
                zero_non_finite(k_buf.index(w).reshape([HALF, BLOCK_D]).slice(WG * (BLOCK_D // 2), BLOCK_D // 2,
                                                                              dim=1))
            tma.store_wait(0)  # the last tile's dK / dV stores have read the dS slots and dQ buffer
            base = 0  # the item's flattened blocks before this query head's
            for hg in range(GROUP):
                h = kvh * GROUP + hg
                f0, nf, p0, n = _column(b, h, kt, map_sb, map_sh, n_kt, T_FULL_PTR, T_PART_PTR, SUB_M)
                j0, j1 = _part_blocks(n, base, lo, hi, SPLIT)
                base += n
                # one loop per kind of tile, full blocks [0, nf) then partial ones [nf, n) (with SPLIT
                # clipped to the part): a branch on the kind inside one loop ran 4-9% slower on
                # sliding-window and document maps (H200)
                for kind in gl.static_range(2):
                    start, stop = _kind_blocks(kind, nf, j0, j1, SPLIT)
                    for j in range(start, stop):
                        dk, dv = _bwd_block(kind == 0, WG, j, it, b, h, f0, nf, p0, dk, dv, q_buf, do_buf, kb, vb,
                                            k_buf, ds_buf, dq_buf, lse_buf, delta_buf, qd_ready, qd_empty, ds_ready,
                                            ds_free, dqa_desc, COL_BITS, T_FULL_IDX, T_PART_IDX, Lq, c, scale,
                                            S_LAYOUT, A_LAYOUT, DQ_LAYOUT, TILE_Q, TILE_K, BLOCK_D)
                        it += 1
            mbarrier.arrive(kv_empty, count=1)
            if SPLIT:
                if slot >= 0:  # a part of a cut key tile: add into its slot
                    _add_dkdv(WG, dk * scale, dv, DKV_ACC, slot, O_LAYOUT, TILE_K, BLOCK_D)
                else:
                    _store_dkdv(WG, dk * scale, dv, it, ds_buf, dq_buf, ds_free, dk_desc, dv_desc, b, kvh,
                                kt * TILE_K + WG * HALF)
            else:
                _store_dkdv(WG, dk * scale, dv, it, ds_buf, dq_buf, ds_free, dk_desc, dv_desc, b, kvh,
                            kt * TILE_K + WG * HALF)
        tma.store_wait(0)  # shared memory outlives the last store's read

    @gluon.jit
    def _operand_descs(Q, K, V, DO, LSE, DELTA, sqb, sqh, sqm, skb, skh, skn, svb, svh, svn, sdb, sdh, sdm, B, Hq,
                       Hkv, Lq, Lq_stat, Lk, D_TMA, SMEM: gl.constexpr, STAT_SMEM: gl.constexpr,
                       BLOCK_D: gl.constexpr):
        """TMA descriptors of what both Hopper backwards' producers load: 64-row blocks of Q, dO
        (B, Hq, Lq, D_TMA), K and V (B, Hkv, Lk, D_TMA), BLOCK_D wide; lse and delta as flat
        (B * Hq * Lq_stat,) vectors, each head's rows padded to Lq_stat (a multiple of 64) so that
        every block starts 256-byte aligned (rows past Lq are masked by position in the consumers)."""
        block: gl.constexpr = [1, 1, HALF, BLOCK_D]
        q_desc = tma.make_tensor_descriptor(Q, shape=[B, Hq, Lq, D_TMA], strides=[sqb, sqh, sqm, 1],
                                            block_shape=block, layout=SMEM)
        do_desc = tma.make_tensor_descriptor(DO, shape=[B, Hq, Lq, D_TMA], strides=[sdb, sdh, sdm, 1],
                                             block_shape=block, layout=SMEM)
        k_desc = tma.make_tensor_descriptor(K, shape=[B, Hkv, Lk, D_TMA], strides=[skb, skh, skn, 1],
                                            block_shape=block, layout=SMEM)
        v_desc = tma.make_tensor_descriptor(V, shape=[B, Hkv, Lk, D_TMA], strides=[svb, svh, svn, 1],
                                            block_shape=block, layout=SMEM)
        lse_desc = tma.make_tensor_descriptor(LSE, shape=[B * Hq * Lq_stat], strides=[1], block_shape=[HALF],
                                              layout=STAT_SMEM)
        delta_desc = tma.make_tensor_descriptor(DELTA, shape=[B * Hq * Lq_stat], strides=[1], block_shape=[HALF],
                                                layout=STAT_SMEM)
        return q_desc, do_desc, k_desc, v_desc, lse_desc, delta_desc

    @gluon.jit
    def _attn_bwd_sm90(
        Q, K, V, DO, LSE, DELTA, DK, DV, DQA,
        T_FULL_PTR, T_FULL_IDX, T_PART_PTR, T_PART_IDX, COL_BITS, K_ORDER, PROG_PTR, PROG_ITEMS, PARTS, DKV_ACC,
        sqb, sqh, sqm, skb, skh, skn, svb, svh, svn, sdb, sdh, sdm, sdkb, sdkh, sdkn, sdvb, sdvh, sdvn,
        B, Hq, Hkv, GROUP, Lq, Lq_stat, Lk, D_TMA, map_sb, map_sh, n_kt, section, scale,
        SMEM: gl.constexpr, DQ_SMEM: gl.constexpr, DS_SMEM: gl.constexpr, STAT_SMEM: gl.constexpr,
        TILE_Q: gl.constexpr, TILE_K: gl.constexpr, BLOCK_D: gl.constexpr, NUM_STAGES: gl.constexpr,
        CONSUMER_REGS: gl.constexpr, SPLIT: gl.constexpr,
    ):
        dtype: gl.constexpr = Q.dtype.element_ty
        q_desc, do_desc, k_desc, v_desc, lse_desc, delta_desc = _operand_descs(
            Q, K, V, DO, LSE, DELTA, sqb, sqh, sqm, skb, skh, skn, svb, svh, svn, sdb, sdh, sdm, B, Hq, Hkv, Lq,
            Lq_stat, Lk, D_TMA, SMEM, STAT_SMEM, BLOCK_D)
        block: gl.constexpr = [1, 1, HALF, BLOCK_D]
        dk_desc = tma.make_tensor_descriptor(DK, shape=[B, Hkv, Lk, D_TMA], strides=[sdkb, sdkh, sdkn, 1],
                                             block_shape=block, layout=SMEM)
        dv_desc = tma.make_tensor_descriptor(DV, shape=[B, Hkv, Lk, D_TMA], strides=[sdvb, sdvh, sdvn, 1],
                                             block_shape=block, layout=SMEM)
        # dQ accumulator (B, Hq, Lq, D_TMA) fp32, contiguous
        dqa_desc = tma.make_tensor_descriptor(DQA, shape=[B, Hq, Lq, D_TMA], strides=[Hq * Lq * D_TMA, Lq * D_TMA,
                                              D_TMA, 1], block_shape=[1, 1, HALF, BLOCK_D // 2], layout=DQ_SMEM)
        lse_buf = gl.allocate_shared_memory(gl.float32, [NUM_STAGES, HALF], STAT_SMEM)
        delta_buf = gl.allocate_shared_memory(gl.float32, [NUM_STAGES, HALF], STAT_SMEM)
        k_buf = gl.allocate_shared_memory(dtype, [2, 1, 1, HALF, BLOCK_D], SMEM)
        v_buf = gl.allocate_shared_memory(dtype, [2, 1, 1, HALF, BLOCK_D], SMEM)
        q_buf = gl.allocate_shared_memory(dtype, [NUM_STAGES, 1, 1, HALF, BLOCK_D], SMEM)
        do_buf = gl.allocate_shared_memory(dtype, [NUM_STAGES, 1, 1, HALF, BLOCK_D], SMEM)
        # dS^T of both warpgroups (two slots each: [warpgroup, slot]) and each one's dQ part before its
        # reduce; between key tiles they stage the warpgroups' dK and dV (``_store_dkdv``)
        ds_buf = gl.allocate_shared_memory(dtype, [4, HALF, HALF], DS_SMEM)
        dq_buf = gl.allocate_shared_memory(gl.float32, [2, 1, 1, HALF, BLOCK_D // 2], DQ_SMEM)
        kv_ready = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
        kv_empty = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
        qd_ready = gl.allocate_shared_memory(gl.int64, [NUM_STAGES, 1], mbarrier.MBarrierLayout())
        qd_empty = gl.allocate_shared_memory(gl.int64, [NUM_STAGES, 1], mbarrier.MBarrierLayout())
        ds_ready = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
        ds_free = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
        mbarrier.init(kv_ready, count=1)
        mbarrier.init(kv_empty, count=2)  # released by both consumers
        for i in gl.static_range(NUM_STAGES):
            mbarrier.init(qd_ready.index(i), count=1)
            mbarrier.init(qd_empty.index(i), count=2 * 128)  # every thread of both consumers (``signal``)
        for i in gl.static_range(2):
            mbarrier.init(ds_ready.index(i), count=2)
            mbarrier.init(ds_free.index(i), count=2 * 128)  # every thread of both consumers
        n_bk = B * Hkv
        c = scale * 1.4426950408889634
        gl.warp_specialize([
            (_bwd_producer, (q_desc, do_desc, k_desc, v_desc, lse_desc, delta_desc, q_buf, do_buf, k_buf, v_buf,
                             lse_buf, delta_buf, kv_ready, kv_empty, qd_ready, qd_empty, PROG_PTR, PROG_ITEMS, n_bk,
                             section, Hq, Hkv, GROUP, Lq_stat, map_sb, map_sh, n_kt, K_ORDER, T_FULL_PTR, T_FULL_IDX,
                             T_PART_PTR, T_PART_IDX, PARTS, TILE_Q, TILE_K, 1, SPLIT)),
            (_bwd_consumer, (0, q_buf, do_buf, k_buf, v_buf, ds_buf, dq_buf, lse_buf, delta_buf, kv_ready, kv_empty,
                             qd_ready, qd_empty, ds_ready, ds_free, dk_desc, dv_desc, dqa_desc, COL_BITS, PROG_PTR,
                             PROG_ITEMS, PARTS, DKV_ACC, n_bk, section, Hq, Hkv, GROUP, map_sb, map_sh, n_kt, K_ORDER,
                             T_FULL_PTR, T_FULL_IDX, T_PART_PTR, T_PART_IDX, Lq, c, scale, TILE_Q, TILE_K, BLOCK_D,
                             SPLIT)),
            (_bwd_consumer, (1, q_buf, do_buf, k_buf, v_buf, ds_buf, dq_buf, lse_buf, delta_buf, kv_ready, kv_empty,
                             qd_ready, qd_empty, ds_ready, ds_free, dk_desc, dv_desc, dqa_desc, COL_BITS, PROG_PTR,
                             PROG_ITEMS, PARTS, DKV_ACC, n_bk, section, Hq, Hkv, GROUP, map_sb, map_sh, n_kt, K_ORDER,
                             T_FULL_PTR, T_FULL_IDX, T_PART_PTR, T_PART_IDX, Lq, c, scale, TILE_Q, TILE_K, BLOCK_D,
                             SPLIT)),
        ], [4, 4], [CONSUMER_REGS, CONSUMER_REGS])


def supported(q: torch.Tensor, bm: BlockMap, d_tma: int, softcap, kv_heads: int) -> bool:
    """Can the Hopper kernel run this backward? sm_90, fp16/bf16, head dim 64 or 128
    (``HEAD_DIMS``), no softcap, 128 x 128 tiles, a map of several query tiles (its tile counts
    known on the host), with fewer than 2**31 dQ accumulator elements (int32 indexing), and a map
    not bound by its busiest column (``column_bound``) unless it runs on the persistent grid
    (``short_columns``), where such columns are cut into parts (``split_lists``). The kernel is
    written for key tiles of 128, query tiles of any multiple of 64 and maps of one query tile,
    but only the cases above were checked on the GPU (sessions 9, 29 and 37); the others take the
    portable kernels."""
    if not (ENABLED and d_tma in HEAD_DIMS and map_supported(q, bm, d_tma, softcap, kv_heads)):
        return False
    b, hq = q.shape[:2]
    return short_columns(bm, hq // kv_heads) or not column_bound(bm, b * hq, hq // kv_heads)


def map_supported(q: torch.Tensor, bm: BlockMap, d_tma: int, softcap, kv_heads: int) -> bool:
    """The checks of ``supported`` other than the head dim and the busiest column
    (``flash_bwd_sm90_wide`` shares them)."""
    if not eligible(q, softcap):
        return False
    if bm.block_k != 128 or bm.block_q != 128 or bm.nonempty_tiles <= 0:
        return False
    b, hq, lq = q.shape[:3]
    return b * hq * -(-lq // 64) * 64 * d_tma < 2**31  # the kernel indexes dQ and lse with int32


def column_bound(bm: BlockMap, batch_heads: int, group: int) -> bool:
    """Is a launch of one program per key tile (one resident per SM) bound by its longest
    program? A program walks its map column once for each of the ``group`` query heads that
    share its KV head; ``batch_heads``: batch x query heads. Longformer's global keys and a
    tree's shared trunk are (H200, session 9: 0.72-0.76x the portable kernels, which split each
    key tile over more programs); causal, sliding and documents maps are not."""
    return is_row_bound(group * bm.max_col_tiles, bm.nonempty_tiles, batch_heads // (bm.batch * bm.heads),
                        bm.full_ptr.device, per_sm=1)


def short_columns(bm: BlockMap, group: int) -> bool:
    """Run the backward on a persistent grid (one program per SM walking a list of key tiles,
    ``program_lists``)? Yes when a key tile's program walks at most
    ``PERSISTENT_MAX_MEAN_TILES`` query tiles on average (the map's mean column times the
    ``group`` query heads per KV head): there a program's start (barriers, tensor descriptors,
    the first loads: ~15 us per key tile on the H200) is a large part of its work. Long columns keep one program
    per key tile: the hardware then starts the heaviest-first items on whichever SM frees up,
    so the items running at any time stay neighbours in that order and share their Q / dO
    rows in L2, which a static split of long items loses (causal 128k: 0.82x)."""
    columns = bm.batch * bm.heads * bm.n_k_tiles
    return 0 < group * bm.nonempty_tiles <= PERSISTENT_MAX_MEAN_TILES * columns


def column_section(bm: BlockMap, batch: int, kv_heads: int, group: int, lq: int, d_tma: int, elt_size: int,
                   n_programs: int) -> int:
    """(batch, KV head) pairs per section of the item order of a launch of one program per key
    tile (``_key_tile``), which the hardware starts in order as SMs free up: pairs whose query
    rows (Q and dO, ``elt_size`` bytes an element, and the fp32 dQ accumulator, for ``group``
    query heads each) fit the L2 together (``sm90_schedule.l2_section``). Causal 32k, rank-major
    over 16 heads, moves ~13.5 GB from DRAM against ~0.8 GB one head at a time (estimate,
    ``session27/counter_order_model.py --kernel bwd``)."""
    group_bytes = group * lq * d_tma * (2 * elt_size + 4)
    group_work = group * bm.nonempty_tiles / (bm.batch * bm.heads)
    return l2_section(batch * kv_heads, group_bytes, group_work, group * bm.max_col_tiles, n_programs)


def item_tile_counts(bm: BlockMap, batch: int, kv_heads: int, group: int, map_sb: int,
                     map_sh: int) -> tuple[np.ndarray, np.ndarray]:
    """(full, partial) query tiles of each item's column for each of the ``group`` query heads of
    its KV head: two (n_items, group) arrays, items numbered as ``item_costs``. Reads the map back."""
    n_kt = bm.n_k_tiles
    rows = _map_rows(batch, kv_heads, group, map_sb, map_sh)
    tiles = _ranked_key_tiles(bm, rows, group)[:, :, None, :]  # [b, kvh, 1, rank]
    counts = []
    for ptr in (bm.t_full_ptr, bm.t_part_ptr):
        per_column = torch.diff(ptr[:bm.batch * bm.heads * n_kt + 1]).cpu().numpy().reshape(-1, n_kt)[rows]
        ranked = np.take_along_axis(per_column.reshape(batch, kv_heads, group, n_kt), tiles, axis=3)
        counts.append(ranked.transpose(3, 0, 1, 2).reshape(n_kt * batch * kv_heads, group))
    return counts[0], counts[1]


def item_costs(bm: BlockMap, batch: int, kv_heads: int, group: int, map_sb: int, map_sh: int) -> np.ndarray:
    """Estimated work of each item (key tile of one (batch, KV head); item ``t`` is rank
    ``t // (batch * kv_heads)`` of ``k_order`` for (b, KV head) ``t % (batch * kv_heads)``), in
    64-row full blocks: a full query tile is 2 blocks, a partial one 3.2 (H200, session 20: a
    partial block costs ~1.6 full ones), summed over the ``group`` query heads of the KV head,
    plus 2 for the item's own start and dK / dV stores. Reads the map back (a device sync)."""
    return _costs_of(*item_tile_counts(bm, batch, kv_heads, group, map_sb, map_sh))


def _costs_of(full: np.ndarray, partial: np.ndarray) -> np.ndarray:
    """``item_costs`` from ``item_tile_counts``."""
    return _FULL_COST * full.sum(1) + _PARTIAL_COST * partial.sum(1) + _ITEM_COST


def item_positions(bm: BlockMap, batch: int, kv_heads: int, group: int, map_sb: int, map_sh: int) -> np.ndarray:
    """Each item's place in the locality order (batch, KV head, key tile ascending): neighbours
    there are neighbouring key tiles of one head, which share query rows (``work_lists``).
    Indexed by item number as ``item_costs``. Reads the map's key order back."""
    n_kt = bm.n_k_tiles
    tiles = _ranked_key_tiles(bm, _map_rows(batch, kv_heads, group, map_sb, map_sh), group)  # [b, kvh, rank]
    pos = np.arange(batch * kv_heads).reshape(batch, kv_heads, 1) * n_kt + tiles
    return pos.reshape(batch * kv_heads, n_kt).T.reshape(-1)


def _map_rows(batch: int, kv_heads: int, group: int, map_sb: int, map_sh: int) -> np.ndarray:
    """(batch, query heads): the map's (b, h) group of each (batch row, query head)."""
    return np.arange(batch)[:, None] * map_sb + np.arange(kv_heads * group)[None, :] * map_sh


def _ranked_key_tiles(bm: BlockMap, rows: np.ndarray, group: int) -> np.ndarray:
    """(batch, KV heads, n_kt) int64: the key tile of each rank of ``k_order`` per (b, KV head)
    (the order of the KV head's first query head, as the kernel's ``_key_tile``)."""
    return bm.k_order.cpu().numpy()[rows[:, ::group]].astype(np.int64)


def program_lists(bm: BlockMap, batch: int, kv_heads: int, group: int, map_sb: int, map_sh: int,
                  n_programs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Work lists (``work_lists.map_lists``) of a launch of ``n_programs``, balanced by
    ``item_costs`` in the locality order of ``item_positions``. H100, backward alone: against the
    snake's lists, cost-only LPT lists ran documents 8k / 32k 1.06x / 1.07x, GQA 32:8 documents
    8k 1.17x (session 23); the locality lists another 1.24x / 1.49x on documents 8k / 32k, 1.07x
    on sliding (session 24; ``benchmarks/results/session2{3,4}/ab_*.log``)."""
    n_items = batch * kv_heads * bm.n_k_tiles
    return work_lists.map_lists(
        bm, _LISTS, (batch, kv_heads, group, n_programs), n_items, n_programs,
        lambda: (item_costs(bm, batch, kv_heads, group, map_sb, map_sh),
                 item_positions(bm, batch, kv_heads, group, map_sb, map_sh)))


def split_lists(bm: BlockMap, batch: int, kv_heads: int, group: int, map_sb: int, map_sh: int, lk: int,
                n_sm: int):
    """Work lists of a persistent launch on up to ``n_sm`` programs in which the items heavier than
    ``split_columns.SPLIT_SHARE`` of the mean work per SM are cut into parts
    (``split_columns.cut_items``): (ptr, entries, parts, slots, dK / dV destination rows,
    accumulator rows), cached on the map; None where no item is that heavy, or while a CUDA graph
    is captured and nothing is cached (the map cannot be read back: the launch then takes the
    whole items, ``program_lists``)."""
    key = (batch, kv_heads, group, n_sm, lk)
    cached = plans.recall(bm, _SPLITS, key)
    if cached is not None:
        return cached or None
    if plans.capturing(bm.device):
        return None
    full, partial = item_tile_counts(bm, batch, kv_heads, group, map_sb, map_sh)
    costs = _costs_of(full, partial)
    cap = split_columns.SPLIT_SHARE * costs.sum() / n_sm
    result = False
    if (costs - _ITEM_COST).max(initial=0.0) > cap:
        sub_m = bm.block_q // 64
        work = split_columns.cut_items(full, partial, costs, item_positions(bm, batch, kv_heads, group, map_sb, map_sh),
                                       cap, (_FULL_COST / sub_m, _PARTIAL_COST / sub_m), sub_m, bm.device)
        ptr, entries = work_lists.balanced_lists(work.costs, min(work.costs.size, n_sm), bm.device, work.positions)
        tiles = _ranked_key_tiles(bm, _map_rows(batch, kv_heads, group, map_sb, map_sh), group)  # [b, kvh, rank]
        dst, src = split_columns.slot_rows(work.slot_items, tiles.reshape(batch * kv_heads, -1).T.reshape(-1),
                                           batch * kv_heads, lk, bm.block_k, bm.device)
        result = (ptr, entries, work.parts, work.n_slots, dst, src)
    plans.remember(bm, _SPLITS, key, result)
    return result or None


@functools.lru_cache(maxsize=None)
def _dq_layout(block_d: int):
    """A warpgroup's dQ part before its reduce-add: 64 rows x half the head dim, fp32."""
    return gl.NVMMASharedLayout.get_default_for([1, 1, 64, block_d // 2], gl.float32)


@functools.lru_cache(maxsize=None)
def _stat_layout():
    return gl.NVMMASharedLayout.get_default_for([64], gl.float32)


def backward_sm90(q, k, v, do, lse, delta, dk, dv, dq_acc, bm: BlockMap, scale: float, d: int, d_tma: int,
                  map_sb: int, map_sh: int):
    """q/do: (B, Hq, Lq, d_tma), k/v: (B, Hkv, Lk, d_tma), TMA-ready (K may hold non-finite
    entries: the kernel zeroes them in shared memory for dQ); lse/delta: (B, Hq, Lq rounded up
    to 64) fp32 contiguous, zero-padded (every 64-row block of the stats 256-byte aligned for its
    TMA load); dq_acc: (B, Hq, Lq, d_tma) fp32 contiguous, zeroed (``backward.prepare`` writes
    all three). Writes dk, dv (B, Hkv, Lk, d) and
    adds dQ into dq_acc. Returns the launch as (compiled, grid, args, constexprs, cut) for
    ``relaunch.Relaunch`` (slots 0-8: q, k, v, do, lse, delta, dk, dv, dq_acc; with key tiles cut
    into parts, ``split_lists``, also the accumulator's slot, and ``cut`` is the
    ``split_columns.CutTiles`` that zeroes it and casts it into dK / dV; else None), or None
    where dK / dV went through buffers (the call is not replayable as it is)."""
    b, hq, lq, _ = q.shape
    hkv, lk = k.shape[1], k.shape[2]
    group = hq // hkv
    # dK / dV leave by TMA stores: contiguous rows of d_tma elements (16-byte multiples)
    dk_out, dv_out = (t if d == d_tma and t.is_contiguous() and t.data_ptr() % 16 == 0
                      else t.new_empty(t.shape[:-1] + (d_tma,)) for t in (dk, dv))
    n_items = b * hkv * bm.n_k_tiles
    persistent = short_columns(bm, group)
    # key tiles cut into parts only where one would outlast the mean program (``column_bound``):
    # elsewhere whole items need no accumulator, atomics or cast
    split = (split_lists(bm, b, hkv, group, map_sb, map_sh, lk, sm_count(q.device))
             if persistent and column_bound(bm, b * hq, group) else None)
    cut = None
    if split is not None:
        prog_ptr, prog_items, parts, n_slots, dst, src = split
        cut = split_columns.CutTiles((n_slots, 2, bm.block_k, d_tma), dst, src, _DKV_ACC_SLOT)
        dkv_acc = cut.accumulator(q.device)
    else:
        n_programs = min(n_items, sm_count(q.device)) if persistent else n_items
        prog_ptr, prog_items = program_lists(bm, b, hkv, group, map_sb, map_sh, n_programs)
        parts, dkv_acc = prog_items, dq_acc  # unused
    grid = (prog_ptr.numel() - 1,)  # the lists' programs (a cut launch's parts may fill fewer than the SMs)
    # the lists' costs and positions number items in plain rank-major order (sections of every head)
    section = b * hkv if persistent else column_section(bm, b, hkv, group, lq, d_tma, q.element_size(),
                                                         sm_count(q.device))
    args = (q, k, v, do, lse, delta, dk_out, dv_out, dq_acc,
            bm.t_full_ptr, bm.t_full_idx, bm.t_part_ptr, bm.t_part_idx, column_bitmaps(bm), bm.k_order,
            prog_ptr, prog_items, parts, dkv_acc,
            *q.stride()[:3], *k.stride()[:3], *v.stride()[:3], *do.stride()[:3], *dk_out.stride()[:3],
            *dv_out.stride()[:3], b, hq, hkv, group, lq, lse.shape[-1], lk, d_tma, map_sb, map_sh, bm.n_k_tiles,
            section, scale)
    # BLOCK_D: d_tma itself, one of HEAD_DIMS (``supported``)
    constexprs = dict(SMEM=smem_layout((1, 1, 64, d_tma), q.dtype), DQ_SMEM=_dq_layout(d_tma),
                      DS_SMEM=smem_layout((64, 64), q.dtype), STAT_SMEM=_stat_layout(), TILE_Q=bm.block_q,
                      TILE_K=bm.block_k, BLOCK_D=d_tma, NUM_STAGES=STAGES, CONSUMER_REGS=_CONSUMER_REGS,
                      SPLIT=split is not None)
    compiled = _attn_bwd_sm90[grid](*args, **constexprs, num_warps=4,
                                    maxnreg=(2 * _CONSUMER_REGS + _PRODUCER_REGS) // 3)
    assert args[_DKV_ACC_SLOT] is dkv_acc
    if cut is not None:
        cut.finish(dkv_acc, dk_out, dv_out)
    if dk_out is dk and dv_out is dv:
        return compiled, grid, args, constexprs, cut
    dk.copy_(dk_out[..., :d])
    dv.copy_(dv_out[..., :d])
    return None
