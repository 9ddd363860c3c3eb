"""Split-KV decoding (flash-decoding) with GQA packing: the forward pass for short query blocks.

When all queries fit in one query tile (``q_len <= block_q``: decoding 1-64 new tokens,
verifying a speculative tree, a short chunk), the training kernel would give each
(batch, query head) one program that walks the whole cache alone, most of its rows empty.
Instead:

* **GQA packing.** When the mask is the same for every head, the query heads that share a
  KV head, times the query rows, form one tile (packed row ``p = head * Lq + r``), so each
  K/V tile is read once per KV head, not once per query head.
* **Split-KV.** The key tiles of the map row are cut into ``n_splits`` equal chunks, one
  program each (grid axis 1), sized so that the grid fills the GPU. Each program writes an
  unnormalised partial result (acc, running max m, sum l); ``_merge_splits`` merges the
  splits through their log-sum-exps. For up to 16 packed rows (decoding a few tokens) the
  last split to finish does it, counted on a per-row-block counter, so one launch does
  everything (a decode step is host-bound; a second launch cost ~40 us of host time); larger
  blocks (tree verification) merge in a second, wide launch (``_decode_combine``), which
  beats one program merging 128 rows serially. Chunks are cut on the device from
  the row's tile count, so nothing waits for the host and the launch can be captured in a
  CUDA graph.
* **Row blocks side by side.** When the packed rows need several row blocks (a 64-node tree:
  256 rows per KV head), the row blocks reading the same K/V chunk are neighbours in the
  grid, so they stream the chunk at the same time and the second read is mostly an L2 hit
  (H100: L2 hit rate 25 -> 40%, tree verification 0.487 -> 0.449 ms).

* **Hopper.** On sm_90, blocks of at least 128 packed rows per KV head with enough of them to
  fill the GPU (``flash_decode_sm90.supported``: e.g. a 64-node tree, GQA 4, batch >= 2) run the
  same items on the warp-specialized Hopper forward kernel instead, whole key tiles per split,
  then the same merge launch.

* **Tiles full on the real rows.** A map of one query tile has no FULL tiles (one sticking out
  past ``Lq`` never is). Both kernels read the map's row view through ``real_rows.real_row_map``,
  where the tiles whose ``q_len`` real rows allow every key are full: decoding a token runs no
  masking at all, tree verification masks only the tiles holding tree nodes.

* **Replayed launches.** Every layer of a decode step calls this with the step's map and the
  same shapes; the first call records its launch on the map (``_DecodePlan``) and the others
  replay it with their tensors (``relaunch.py``), skipping Triton's per-call argument binding
  (host time per call 219 -> 92 us, H200 host, session 13). The Hopper route's packed launch
  and its merge launch are replayed the same way (64-node tree, B=4: 135 -> 62 us, session 14).
  ``attention()`` tries the replay (``op.replay_decode``) before its own checks, which the recorded call
  already passed for tensors like these (17 us per call against SDPA's 21, session 16). The
  next step's map records its launch through the compiled kernel of this one's where Triton
  would specialise the arguments alike (``relaunch.launch_recorded``).

The result (out, lse) is exactly what ``attention_forward`` returns, so the usual backward
runs from it when gradients are needed.

**Paged KV** (``PAGED``): K and V live in pages ``(num_pages, Hkv, page_size, D)`` and
``PAGE_TABLE[b, n // page_size]`` names the page of logical key ``n`` of batch row ``b``. Key
blocks are then gathered row by row through the table (any page size) instead of through a
tensor descriptor.
"""
from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from ..block_map import BlockMap
from . import flash_decode_sm90, plans, relaunch
from .real_rows import real_row_map
from .common import finite_or_zero, row_desc, rows_bits, softmax_step
from .config import decode_config, default_scale, dot_precision, launch, next_pow2, programs_per_sm, sm_count
from .forward import map_strides
from .tma import ensure_allocator, padded_dim, tma_operand

MAX_Q = 64  # longest query block sent here (longer ones fill the training kernel's tiles)
_FUSED_ROWS = 16  # packed rows per merge: up to this many per (batch, KV head), the last split merges


@triton.jit
def _kv_block(k_desc, v_desc, K, V, PAGE_TABLE, b, kvh, n0, skb, skh, skn, svb, svh, svn, pages_per_row,
              page_size, Lk, D_TMA, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, PAGED: tl.constexpr):
    """K and V rows [n0, n0 + BLOCK_N) of (batch b, KV head kvh): through the descriptors, or
    with PAGED gathered through the page table (then skb / svb are the page strides)."""
    if PAGED:
        n = n0 + tl.arange(0, BLOCK_N)
        page = tl.load(PAGE_TABLE + b.to(tl.int64) * pages_per_row + n // page_size, mask=n < Lk, other=0)
        d = tl.arange(0, BLOCK_D)[None, :]
        ok = (n < Lk)[:, None] & (d < D_TMA)
        off = n % page_size
        k = tl.load(K + (page.to(tl.int64) * skb + kvh * skh + off * skn)[:, None] + d, mask=ok, other=0.0)
        v = tl.load(V + (page.to(tl.int64) * svb + kvh * svh + off * svn)[:, None] + d, mask=ok, other=0.0)
        return k, v
    else:
        return k_desc.load([n0, 0]), v_desc.load([n0, 0])


@triton.jit
def _decode_split(
    Q, K, V, O, LSE, ACC, M, L, COUNTERS, PAGE_TABLE,
    FULL_PTR, FULL_IDX, PART_PTR, PART_IDX, BITMAPS, KV_START, KV_END,
    sqb, sqh, sqm, skb, skh, skn, svb, svh, svn, sob, soh, som,
    Hq, Hkv, GROUP, PACK, Lq, Lk, D, D_TMA, map_sb, map_sh, n_splits, pages_per_row, page_size, scale, softcap,
    TILE_Q: tl.constexpr, TILE_K: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr, HAS_SOFTCAP: tl.constexpr, PRECISION: tl.constexpr, NEG_SCALE: tl.constexpr,
    PAGED: tl.constexpr, FUSED_MERGE: tl.constexpr, DENSE: tl.constexpr, KV_STARTS: tl.constexpr,
    KV_ENDS: tl.constexpr, CAUSAL_ROWS: tl.constexpr,
):
    SUB_N: tl.constexpr = TILE_K // BLOCK_N
    n_packs = GROUP // PACK
    n_row_blocks = tl.cdiv(PACK * Lq, BLOCK_M)
    unit = tl.program_id(0)  # (batch, KV head, pack of query heads, row block), row blocks fastest:
    row_block = unit % n_row_blocks  # those sharing a K/V chunk run side by side
    pid = unit // n_row_blocks
    split = tl.program_id(1)
    pack = pid % n_packs
    b = pid // n_packs // Hkv
    kvh = pid // n_packs % Hkv
    h0 = kvh * GROUP + pack * PACK  # first query head of the pack
    p = row_block * BLOCK_M + tl.arange(0, BLOCK_M)  # packed rows
    r = p % Lq  # query row (= row inside the single query tile)
    h = h0 + p // Lq
    valid = p < PACK * Lq
    offs_d = tl.arange(0, BLOCK_D)
    q_off = b.to(tl.int64) * sqb + h.to(tl.int64) * sqh + r.to(tl.int64) * sqm
    q = tl.load(Q + q_off[:, None] + offs_d[None, :], mask=valid[:, None] & (offs_d[None, :] < D_TMA), other=0.0)
    if PAGED:
        k_desc, v_desc = K, V  # unused
    else:
        k_desc = row_desc(K, b, kvh, skb, skh, skn, Lk, D_TMA, BLOCK_N, BLOCK_D)
        v_desc = row_desc(V, b, kvh, svb, svh, svn, Lk, D_TMA, BLOCK_N, BLOCK_D)

    kv_lo = 0
    kv_hi = Lk  # keys past it are never read
    if DENSE:  # no map (``unmasked_decode``): this batch row's keys [lo, hi), or with CAUSAL_ROWS
        # query row r's keys [lo, hi - (Lq - 1 - r)); the blocks inside [lo, the first row's end)
        # unmasked
        if KV_STARTS:  # lo: the row's first key (left padding before it)
            kv_lo = tl.maximum(tl.load(KV_START + b), 0)
        if KV_ENDS:  # hi: the row's key count (a paged cache's kv_lens[b])
            kv_hi = tl.minimum(tl.load(KV_END + b), Lk)
        full_lo = tl.cdiv(kv_lo, BLOCK_N)
        f0 = 0
        p0 = 0
        if CAUSAL_ROWS:  # masked: the block holding lo if lo cuts one, then the blocks from tail0 to hi
            first_end = tl.maximum(kv_hi - (Lq - 1), 0)
            n_full = tl.maximum(first_end // BLOCK_N - full_lo, 0)
            lo_block = kv_lo // BLOCK_N
            lo_edge = ((kv_lo % BLOCK_N != 0) & (lo_block < first_end // BLOCK_N)).to(tl.int32)
            tail0 = tl.maximum(first_end // BLOCK_N, lo_block)
            n_all = n_full + lo_edge + tl.maximum(tl.cdiv(kv_hi, BLOCK_N) - tail0, 0)
        else:  # masked: the (at most two) blocks that hold lo or hi
            n_full = tl.maximum(kv_hi // BLOCK_N - full_lo, 0)
            n_all = tl.maximum(tl.cdiv(kv_hi, BLOCK_N) - kv_lo // BLOCK_N, 0)
    else:
        row = b * map_sb + h0 * map_sh  # the map row (one query tile per (batch, head))
        f0 = tl.load(FULL_PTR + row) * SUB_N
        p0 = tl.load(PART_PTR + row) * SUB_N
        n_full = tl.load(FULL_PTR + row + 1) * SUB_N - f0
        n_all = n_full + tl.load(PART_PTR + row + 1) * SUB_N - p0
    chunk = tl.cdiv(n_all, n_splits)  # this split: sub-blocks [s0, s1) of full-then-partial
    s0 = split * chunk
    s1 = tl.minimum(s0 + chunk, n_all)

    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    for j in range(f0 + tl.minimum(s0, n_full), f0 + tl.minimum(s1, n_full)):
        if DENSE:
            n0 = (full_lo + j) * BLOCK_N
        else:
            n0 = tl.load(FULL_IDX + j // SUB_N) * TILE_K + (j % SUB_N) * BLOCK_N
        k, v = _kv_block(k_desc, v_desc, K, V, PAGE_TABLE, b, kvh, n0, skb, skh, skn, svb, svh, svn, pages_per_row,
                         page_size, kv_hi, D_TMA, BLOCK_N, BLOCK_D, PAGED)
        acc, m_i, l_i = softmax_step(acc, m_i, l_i, q, k, v, None,
                                     scale, softcap, False, HAS_SOFTCAP, PRECISION, NEG_SCALE)
    for j in range(p0 + tl.maximum(s0 - n_full, 0), p0 + tl.maximum(s1 - n_full, 0)):
        if DENSE and CAUSAL_ROWS:  # masked block j: the one holding lo (if lo cuts one), then tail0 + ...
            n0 = tl.where((j == 0) & (lo_edge != 0), lo_block, tail0 + j - lo_edge) * BLOCK_N
            cols = n0 + tl.arange(0, BLOCK_N)
            allowed = (cols[None, :] >= kv_lo) & (cols[None, :] < (kv_hi - (Lq - 1) + r)[:, None])
        elif DENSE:  # edge j: the block holding lo (if lo cuts one), else the one holding hi
            n0 = tl.where((j == 0) & (kv_lo % BLOCK_N != 0), kv_lo // BLOCK_N, kv_hi // BLOCK_N) * BLOCK_N
            cols = n0 + tl.arange(0, BLOCK_N)
            allowed = ((cols >= kv_lo) & (cols < kv_hi))[None, :]
        else:
            idx = j // SUB_N
            c0 = (j % SUB_N) * BLOCK_N
            n0 = tl.load(PART_IDX + idx) * TILE_K + c0
            allowed = rows_bits(BITMAPS, idx, r, c0, BLOCK_N, TILE_Q, TILE_K)
        k, v = _kv_block(k_desc, v_desc, K, V, PAGE_TABLE, b, kvh, n0, skb, skh, skn, svb, svh, svn, pages_per_row,
                         page_size, kv_hi, D_TMA, BLOCK_N, BLOCK_D, PAGED)
        if not DENSE or KV_STARTS or KV_ENDS or CAUSAL_ROWS:  # masked-out values must not reach acc as 0 * NaN
            v = finite_or_zero(v)
        acc, m_i, l_i = softmax_step(acc, m_i, l_i, q, k, v,
                                     allowed, scale, softcap, True, HAS_SOFTCAP, PRECISION, NEG_SCALE)

    # partials: (B, Hq, Lq, n_splits) for m and l, (..., D_TMA) for acc
    part = ((b * Hq + h).to(tl.int64) * Lq + r) * n_splits + split
    d_ok = offs_d[None, :] < D_TMA
    tl.store(M + part, m_i, mask=valid)
    tl.store(L + part, l_i, mask=valid)
    tl.store(ACC + part[:, None] * D_TMA + offs_d[None, :], acc, mask=valid[:, None] & d_ok)
    if FUSED_MERGE:
        # the last split of these rows to finish merges them all (no second launch): every
        # thread's stores come before the barrier, the counter's acq_rel atomic publishes them
        tl.debug_barrier()
        if tl.atomic_add(COUNTERS + unit, 1) == n_splits - 1:
            tl.debug_barrier()
            _merge_splits(ACC, M, L, O, LSE, row_block * BLOCK_M, b, h0, sob, soh, som, Hq, Lq, PACK,
                          D, D_TMA, n_splits, BLOCK_M, BLOCK_D)
            tl.store(COUNTERS + unit, 0)  # back to zero: a replayed launch reuses the counters


# argument positions that a plan without a map fills at each call (``split_kv``): K / V strides, key
# count, page table width; and the tensors it fills besides q, k, v, out, lse
DENSE_INT_SLOTS = tuple(_decode_split.arg_names.index(n)
                        for n in ("skb", "skh", "skn", "svb", "svh", "svn", "Lk", "pages_per_row"))
DENSE_TENSOR_SLOTS = tuple(_decode_split.arg_names.index(n) for n in ("PAGE_TABLE", "KV_START", "KV_END"))


@triton.jit
def _decode_combine(ACC, M, L, O, LSE, sob, soh, som, Hq, Hkv, GROUP, PACK, Lq, D, D_TMA, n_splits,
                    MERGE_M: tl.constexpr, BLOCK_D: tl.constexpr):
    """The merge as its own launch, for row blocks too large for one program to merge
    quickly (a 64-node tree: 256 packed rows per KV head), ``MERGE_M`` packed rows per program."""
    n_packs = GROUP // PACK
    pid = tl.program_id(0)  # (batch, KV head, pack) as in _decode_split
    b = pid // n_packs // Hkv
    h0 = (pid // n_packs % Hkv) * GROUP + (pid % n_packs) * PACK
    _merge_splits(ACC, M, L, O, LSE, tl.program_id(1) * MERGE_M, b, h0, sob, soh, som, Hq, Lq, PACK,
                  D, D_TMA, n_splits, MERGE_M, BLOCK_D)


@triton.jit
def _merge_splits(ACC, M, L, O, LSE, p0, b, h0, sob, soh, som, Hq, Lq, PACK, D, D_TMA, n_splits,
                  MERGE_M: tl.constexpr, BLOCK_D: tl.constexpr):
    """Merge the partials of packed rows [p0, p0 + MERGE_M) through their log-sum-exps:
    out = sum_s 2^(m_s - m) acc_s / l, l = sum_s 2^(m_s - m) l_s. Partials are read past L1
    (``.cg``: other programs wrote them), four splits per step so their loads overlap."""
    p = p0 + tl.arange(0, MERGE_M)
    r = p % Lq
    h = h0 + p // Lq
    valid = p < PACK * Lq
    first = ((b * Hq + h).to(tl.int64) * Lq + r) * n_splits  # split 0 of each row
    offs_d = tl.arange(0, BLOCK_D)
    m = tl.full([MERGE_M], float("-inf"), tl.float32)
    l_sum = tl.zeros([MERGE_M], tl.float32)
    acc = tl.zeros([MERGE_M, BLOCK_D], tl.float32)
    for s0 in range(0, n_splits, 4):
        for i in tl.static_range(4):
            ok = valid & (p * 0 + (s0 + i) < n_splits)  # (a tensor compare: the interpreter needs one)
            at = first + s0 + i
            m_s = tl.load(M + at, mask=ok, other=float("-inf"), cache_modifier=".cg")
            l_s = tl.load(L + at, mask=ok, other=0.0, cache_modifier=".cg")
            a_s = tl.load(ACC + at[:, None] * D_TMA + offs_d[None, :], mask=ok[:, None] & (offs_d[None, :] < D_TMA),
                          other=0.0, cache_modifier=".cg")
            m_new = tl.maximum(m, m_s)
            m_use = tl.where(m_new == float("-inf"), 0.0, m_new)  # nothing allowed yet: weights 0, not NaN
            alpha = tl.math.exp2(m - m_use)
            beta = tl.math.exp2(m_s - m_use)
            l_sum = l_sum * alpha + l_s * beta
            acc = acc * alpha[:, None] + a_s * beta[:, None]
            m = m_new
    l_safe = tl.where(l_sum == 0.0, 1.0, l_sum)  # fully masked row: out 0, lse -inf
    out = acc / l_safe[:, None]
    o_off = b.to(tl.int64) * sob + h.to(tl.int64) * soh + r.to(tl.int64) * som
    tl.store(O + o_off[:, None] + offs_d[None, :], out.to(O.dtype.element_ty), mask=valid[:, None] & (offs_d[None, :] < D))
    lse = tl.where(l_sum == 0.0, float("-inf"), (m + tl.math.log2(l_safe)) * 0.6931471805599453)
    tl.store(LSE + first // n_splits, lse, mask=valid)


def use_decode(bm: BlockMap, q_len: int) -> bool:
    """Short query blocks in a single query tile take the split-KV path."""
    return bm.n_q_tiles == 1 and q_len <= MAX_Q


@functools.lru_cache(maxsize=1024)  # called on every decode step with the same few shapes
def num_splits(units: int, kv_blocks: int, per_sm: int, device: torch.device) -> int:
    """Splits per (batch, KV head, pack, row block): the fewest that leave no partly filled last
    wave. ``per_sm`` programs fit on an SM (``programs_per_sm``: two 4-warp programs at 255
    registers), so there are SMs x ``per_sm`` slots; among the split counts up to one wave's
    worth of programs, the one with the least work per slot ``ceil(units * s / slots) / s``
    wins (H100 sweep, benchmarks/results/tune_decode_splits.log: 64 units of a 64-node tree on
    264 slots, 4 splits 0.482 ms against 0.618 for 9 = 2.2 waves). Never more splits than key blocks."""
    slots = sm_count(device) * per_sm
    top = max(1, min(kv_blocks, -(-slots // units)))
    return min(range(1, top + 1), key=lambda s: (-(-units * s // slots) / s, s))


def decode_forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bm: BlockMap, scale: float,
                   softcap: float | None, page_table: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """q: (B, Hq, Lq, D) with Lq <= block_q, k/v: (B, Hkv, Lk, D) -> out (B, Hq, Lq, D), lse (B, Hq, Lq) fp32.
    With ``page_table`` (B, max_pages) int32, k/v are page pools (num_pages, Hkv, page_size, D) and
    the logical length is ``bm.kv_len`` (max_pages * page_size).

    A call like an earlier one with the same map (every layer of a decode step) replays that
    call's launch (``_DecodePlan``)."""
    key = None if page_table is not None else _plan_key(q, k, v, scale, softcap)  # paged: a new map per call
    plan = plans.recall(bm, _PLANS, key)
    if plan is not None:
        return plan(q, k, v)
    q_in, k_in, v_in = q, k, v
    b, hq, lq, d = q.shape
    paged = page_table is not None
    hkv, lk = k.shape[1], (bm.kv_len if paged else k.shape[2])
    group = hq // hkv
    pack = group if bm.heads == 1 else 1  # per-head masks: one head per tile
    out = torch.empty((b, hq, lq, d), dtype=q.dtype, device=q.device)
    lse = torch.empty((b, hq, lq), dtype=torch.float32, device=q.device)
    ensure_allocator()
    d_tma = padded_dim(d, q.dtype)
    if not paged:
        k, v = (tma_operand(t, d_tma) for t in (k, v))
    else:
        d_tma = d
        k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (k, v))
    sb, sh = map_strides(bm)
    real = real_row_map(bm)  # tiles full on the q_len real rows count as full (no masking)
    grid0 = b * hkv * (group // pack)
    units = b * hkv * flash_decode_sm90.row_blocks(group * lq)
    if not paged and pack == group and flash_decode_sm90.supported(q, bm, d_tma, softcap, group * lq, units):
        # many packed rows (tree verification): the Hopper kernel's items, whole key tiles per split
        q = tma_operand(q, d_tma)
        if q.stride(1) != lq * q.stride(2):  # heads and rows merge into one axis for the kernel's view of Q
            q = q.contiguous()
        splits = num_splits(units, bm.n_k_tiles, 1, q.device)
        acc, m, l_ = _partials(b * hq * lq * splits, d_tma, q.device)
        record = key is not None and q is q_in and k is k_in and v is v_in  # inputs used as given
        split = flash_decode_sm90.split_kv_partials(q, k, v, out, lse, (acc, m, l_), real, scale, d, d_tma, sb, splits,
                                                    record=record)
        combine = _combine(acc, m, l_, out, lse, grid0, hq, hkv, group, pack, lq, d, d_tma, splits, record=record)
        if split is not None and combine is not None:
            plans.remember(bm, _PLANS, key, _DecodePlan(out, lse, split, combine))
        return out, lse
    if q.shape[-1] != d_tma or q.stride(-1) != 1:  # rows of q are read with a unit last stride
        q = tma_operand(q, d_tma)
    record = key is not None and q is q_in and k is k_in and v is v_in  # inputs used as given
    tiles = (real.full_ptr, real.full_idx, real.part_ptr, real.part_idx, real.bitmaps)
    plan = split_kv(q, k, v, out, lse, tiles, sb, sh, pack, lk, page_table, scale, softcap, bm.block_q, bm.block_k,
                    record)
    if plan is not None:
        plans.remember(bm, _PLANS, key, plan)
    return out, lse


# split counts of launches without a map do not depend on the key count (they are replayed at any)
_ANY_LENGTH = 1 << 31


def split_kv(q, k, v, out, lse, tiles, map_sb: int, map_sh: int, pack: int, lk: int, page_table, scale: float,
             softcap, tile_q: int, tile_k: int, record: bool, kv_start=None, kv_end=None,
             causal_rows: bool = False) -> "_DecodePlan | None":
    """The portable split-KV launch (``_decode_split``) and its merge, into out (B, Hq, Lq, D) and
    lse (B, Hq, Lq). q: (B, Hq, Lq, D_TMA) with unit last stride; k/v: (B, Hkv, Lk, D_TMA)
    TMA-ready, or page pools with ``page_table``; ``tiles``: the map's row view (full_ptr,
    full_idx, part_ptr, part_idx, bitmaps) with its batch / head strides, or None for no mask
    (``DENSE``: every key of [0, lk), or of [kv_start[b], kv_end[b]) with either or both given,
    (B,) int32; with ``causal_rows`` query row r's range ends Lq - 1 - r keys earlier, the last
    row's at the range's end; then the split count does not depend on the key counts, and a recorded plan
    takes the K / V strides, lk and the page table width as int slots, ``DENSE_INT_SLOTS``, and
    the page table, kv_start and kv_end, where given, as tensors after q, k, v, out, lse). ``pack``: query heads per tile.
    With ``record``, returns the launches as a ``_DecodePlan`` where they can be replayed, else None."""
    b, hq, lq, d = out.shape
    hkv, d_tma = k.shape[1], q.shape[-1]
    group, dense, paged = hq // hkv, tiles is None, page_table is not None
    grid0 = b * hkv * (group // pack)
    cfg = decode_config(pack * lq, tile_k, d, q.dtype, paged)
    row_blocks = -(-pack * lq // cfg["BLOCK_M"])
    kv_blocks = _ANY_LENGTH if dense else -(-lk // tile_k) * (tile_k // cfg["BLOCK_N"])
    splits = num_splits(grid0 * row_blocks, kv_blocks, programs_per_sm(cfg), q.device)
    acc, m, l_ = _partials(b * hq * lq * splits, d_tma, q.device)
    # decoding a few tokens: the last split merges (one launch; the step is host-bound). Longer
    # blocks (trees): one program merging 128 rows is a serial tail, a second launch is cheaper
    fused = pack * lq <= _FUSED_ROWS
    # a zeroed counter per row block (sized for the smallest block, should launch() step down)
    counters = torch.zeros(grid0 * -(-pack * lq // 16) if fused else 1, dtype=torch.int32, device=q.device)
    if dense:
        tiles = (counters,) * 5  # never read
    args = (q, k, v, out, lse, acc, m, l_, counters, page_table if paged else tiles[0], *tiles,
            *(t if t is not None else counters for t in (kv_start, kv_end)),
            *q.stride()[:3], *k.stride()[:3], *v.stride()[:3], *out.stride()[:3],
            hq, hkv, group, pack, lq, lk, d, d_tma, map_sb, map_sh, splits,
            page_table.shape[1] if paged else 0, k.shape[2] if paged else 1, scale, softcap if softcap else 1.0)
    constexprs = dict(TILE_Q=tile_q, TILE_K=tile_k, BLOCK_D=next_pow2(max(d_tma, 16)),
                      HAS_SOFTCAP=softcap is not None, PRECISION=dot_precision(q.dtype), NEG_SCALE=scale < 0,
                      PAGED=paged, FUSED_MERGE=fused, DENSE=dense, KV_STARTS=kv_start is not None,
                      KV_ENDS=kv_end is not None, CAUSAL_ROWS=causal_rows)
    grid_fn = lambda c: (grid0 * -(-pack * lq // c["BLOCK_M"]), splits)  # noqa: E731
    launch_key = ("decode", paged, dense, kv_start is not None, kv_end is not None, causal_rows, tile_q, tile_k, d,
                  q.dtype, q.device)
    slots = (0, 1, 2, 3, 4)
    if dense:
        slots += tuple(i for i, t in zip(DENSE_TENSOR_SLOTS, (page_table, kv_start, kv_end)) if t is not None)
    if record:  # through the compiled kernel of an earlier map's launch where Triton would pick the same
        split = relaunch.launch_recorded(_decode_split, grid_fn, args, constexprs, cfg, launch_key, slots,
                                         DENSE_INT_SLOTS if dense else ())
    else:
        split = None
        launch(_decode_split, grid_fn, args, constexprs, cfg, launch_key)
    combine = None if fused else _combine(acc, m, l_, out, lse, grid0, hq, hkv, group, pack, lq, d, d_tma, splits,
                                          record=record)
    if split is None or not (fused or combine is not None):
        return None
    return _DecodePlan(out, lse, split, combine)


def _partials(rows: int, d_tma: int, device: torch.device):
    """Partials of every split in one buffer: acc (rows, d_tma), then m and l (rows,), fp32."""
    parts = torch.empty(rows * (d_tma + 2), dtype=torch.float32, device=device)
    return parts[:rows * d_tma], parts[rows * d_tma:rows * (d_tma + 1)], parts[rows * (d_tma + 1):]


def _combine(acc, m, l_, out, lse, grid0, hq, hkv, group, pack, lq, d, d_tma, splits, record: bool = False):
    """The merge of the splits as its own launch (``_decode_combine``), into out and lse. With
    ``record``, returns its ``Relaunch`` (slots: out, lse) where launches can be replayed, else None."""
    grid = (grid0, -(-pack * lq // _FUSED_ROWS))
    args = (acc, m, l_, out, lse, *out.stride()[:3], hq, hkv, group, pack, lq, d, d_tma, splits)
    constexprs = dict(MERGE_M=_FUSED_ROWS, BLOCK_D=next_pow2(max(d_tma, 16)))
    compiled = _decode_combine[grid](*args, **constexprs)
    if not (record and relaunch.can_record(compiled)):
        return None
    return relaunch.Relaunch(_decode_combine, compiled, grid, args, constexprs, {}, (3, 4))


# ---- replayed launches ---------------------------------------------------------------------------
_PLANS = "_decode_plans"  # where _DecodePlans live on a map (``plans.py``)


def _plan_key(q, k, v, scale, softcap):
    """What a decode launch depends on besides the map and the tensors' contents, or None where
    launches are not replayed (CPU, other Triton releases, tuning overrides, CUDA graph capture:
    a graph gets buffers of its own). Pointer alignment is part of it: the kernel is specialised
    on it. The stream too: a plan's partials and counters serve one stream's calls in order."""
    if not plans.replayable(q):
        return None
    return (plans.layouts(q, k, v), q.device, scale, softcap, torch._C._cuda_getCurrentRawStream(q.device.index),
            flash_decode_sm90.MIN_PACKED_ROWS, flash_decode_sm90.MIN_UNITS)


def recorded_plan(bm: BlockMap, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None,
                  softcap: float | None) -> "_DecodePlan | None":
    """The plan recorded on ``bm`` for a call with these tensors (their shapes, strides, dtypes,
    devices, alignment), scale (None: the default ``1/sqrt(D)``) and softcap, or None."""
    if _PLANS not in bm.__dict__:
        return None
    return plans.recall(bm, _PLANS, _plan_key(q, k, v, default_scale(q.shape[-1]) if scale is None else scale, softcap))


class _DecodePlan:
    """A recorded decode call on one map (every layer of a decode step shares one): its split
    launch (portable, or the Hopper kernel's packed items) and its merge launch, if any, replayed
    with new q, k, v, fresh out / lse, and the recorded call's partials and counters (the launch
    leaves its counters at zero; calls on one stream run in order, so they never use the buffers
    at the same time)."""

    def __init__(self, out, lse, split: "relaunch.Relaunch", combine: "relaunch.Relaunch | None"):
        self._out_shape, self._lse_shape, self._dtype, self._device = out.shape, lse.shape, out.dtype, out.device
        self._split, self._combine = split, combine
        self._spare_lse = torch.empty_like(lse)  # written by the calls whose lse nobody reads

    def __call__(self, q, k, v, fresh_lse: bool = True, ints: tuple = (), extra: tuple = ()):
        out = torch.empty(self._out_shape, dtype=self._dtype, device=self._device)
        lse = torch.empty(self._lse_shape, dtype=torch.float32, device=self._device) if fresh_lse else self._spare_lse
        self._split(q, k, v, out, lse, *extra, ints=ints)
        if self._combine is not None:
            self._combine(out, lse)
        return out, lse
