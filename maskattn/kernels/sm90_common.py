"""What the Hopper kernels written in Gluon (``flash_fwd_sm90``, ``flash_bwd_sm90``,
``flash_bwd_sm90_wide``, ``flash_decode_sm90``) share: the Gluon imports, the inputs they can take,
shared-memory layouts, the bitmap readers (query-major ``BlockMap.bitmaps``; the backward's
key-major ``column_bitmaps``) and the backwards' in-place cleaning of K (``zero_non_finite``).
Gluon functions cannot call ``@triton.jit`` helpers (they need explicit layouts), so
``rows_bits`` restates ``common.rows_bits`` for a given register layout."""
from __future__ import annotations

import functools

import torch

from .config import gluon_tested

try:  # Gluon is Triton's lower-level frontend (warp specialization on Hopper: Triton >= 3.5)
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl
    HAVE_GLUON = hasattr(gl, "warp_specialize") and gluon_tested()
    if HAVE_GLUON:
        from triton.experimental.gluon.language.nvidia.ampere import async_copy
        from triton.experimental.gluon.language.nvidia.hopper import fence_async_shared, mbarrier
except ImportError:  # pragma: no cover - older Triton
    HAVE_GLUON = False


@functools.lru_cache(maxsize=None)
def capability(device: torch.device) -> tuple[int, int]:
    return torch.cuda.get_device_capability(device)


def eligible(q: torch.Tensor, softcap) -> bool:
    """Can a Hopper kernel take these inputs at all? q on an sm_90 GPU, fp16/bf16, no softcap,
    and a Triton release whose Gluon kernels were checked (``config.gluon_tested``)."""
    if not HAVE_GLUON or q.device.type != "cuda" or softcap is not None:
        return False
    return q.dtype in (torch.float16, torch.bfloat16) and capability(q.device) == (9, 0)


@functools.lru_cache(maxsize=None)
def smem_layout(shape: tuple, dtype: torch.dtype):
    """The wgmma / TMA shared-memory layout of a ``shape`` block of fp16 / bf16."""
    return gl.NVMMASharedLayout.get_default_for(list(shape), gl.bfloat16 if dtype == torch.bfloat16 else gl.float16)


if HAVE_GLUON:
    @gluon.jit
    def signal(bar, PER_THREAD: gl.constexpr):
        """The calling warpgroup arrives on mbarrier ``bar``, initialised with 128 arrivals per
        signalling warpgroup with ``PER_THREAD``, else 1. Gluon's ``mbarrier.arrive`` is one
        thread's arrive behind a warpgroup-wide ``bar.sync``; with ``PER_THREAD`` every thread
        arrives instead (``cp.async.mbarrier.arrive.noinc``: with no cp.async copies pending it
        arrives at once) and no ``bar.sync`` sits on the softmax's path. Only for releases of
        buffers whose reads have completed (each thread has waited for its warpgroup's wgmma)
        and for ordering-only hand-overs: whether it orders the thread's earlier plain stores,
        i.e. publishes data written to shared memory, is not established. H200: sliding /
        documents / tree forward +1.4-2.7% (session 18; causal run one program per item lost
        1.7%, on the persistent grid with the item counter it is within noise, session 19); the
        one-pass backward's Q/dO and dS releases +1.1-2.7% (session 19)."""
        if PER_THREAD:
            async_copy.mbarrier_arrive(bar, increment_count=False)
        else:
            mbarrier.arrive(bar, count=1)

    @gluon.jit
    def zero_non_finite(tile):
        """Zero, in place, the non-finite entries of ``tile``: a (rows, cols) shared-memory tile
        of fp16 / bf16 (cols 8-256, a power of two) that the calling warpgroup multiplies next
        (the backwards' dQ = dS K, where dS is 0 for masked pairs and 0 * inf would leak a
        masked-out NaN / Inf key into dQ). Ends with the proxy fence; the caller's warpgroup
        barrier before the product then makes every thread's stores visible to it. Finite
        entries are written back unchanged, so a product of another warpgroup reading the tile
        meanwhile sees each entry either as it was or zeroed."""
        COLS: gl.constexpr = tile.shape[1]
        VEC: gl.constexpr = 8  # 16 bytes a thread and row
        layout: gl.constexpr = gl.BlockedLayout([1, VEC], [32 // (COLS // VEC), COLS // VEC], [4, 1], [1, 0])
        x = tile.load(layout)
        tile.store(gl.where(gl.abs(x) < float("inf"), x, 0.0).to(tile.dtype))
        fence_async_shared()

    @gluon.jit
    def key_major_words(COL_BITS, entry, key0, q0, LAYOUT: gl.constexpr, BLOCK_K: gl.constexpr,
                        TILE_Q: gl.constexpr, TILE_K: gl.constexpr):
        """The words of tile keys [key0, key0 + BLOCK_K) covering tile query rows [q0, q0 + 64) of
        column-view entry ``entry`` in the key-major bitmaps (``column_bitmaps.py``): two
        (BLOCK_K,) int32 vectors (queries q0 + [0, 32) and q0 + [32, 64)) in the row slice of
        ``LAYOUT`` (keys on rows). Issue them early; ``key_major_bits`` expands them."""
        QWORDS: gl.constexpr = TILE_Q // 32
        keys = key0 + gl.arange(0, BLOCK_K, layout=gl.SliceLayout(1, LAYOUT))
        base = COL_BITS + entry.to(gl.int64) * (TILE_K * QWORDS) + keys * QWORDS + q0 // 32
        return gl.load(base), gl.load(base + 1)

    @gluon.jit
    def key_major_bits(lo, hi, LAYOUT: gl.constexpr):
        """(BLOCK_K, 64) booleans in ``LAYOUT`` from ``key_major_words``: may key row i attend
        query column j."""
        cols = gl.arange(0, 64, layout=gl.SliceLayout(0, LAYOUT))
        word = gl.where((cols < 32)[None, :], lo[:, None], hi[:, None])
        return ((word >> (cols % 32)[None, :]) & 1) != 0

    @gluon.jit
    def block_bits(BITMAPS, slot, row0, col0, LAYOUT: gl.constexpr, BLOCK_R: gl.constexpr, BLOCK_C: gl.constexpr,
                   TILE_Q: gl.constexpr, TILE_K: gl.constexpr, TRANSPOSED: gl.constexpr):
        """Bits of tile rows [row0, row0+BLOCK_R) x columns [col0, col0+BLOCK_C) of partial tile
        ``slot`` (coordinates inside the tile) in register layout ``LAYOUT``: (BLOCK_R, BLOCK_C),
        or (BLOCK_C, BLOCK_R) with ``TRANSPOSED`` (keys on rows: the backward's S^T)."""
        rows = row0 + gl.arange(0, BLOCK_R, layout=gl.SliceLayout(0 if TRANSPOSED else 1, LAYOUT))
        return rows_bits(BITMAPS, slot, rows, col0, LAYOUT, BLOCK_C, TILE_Q, TILE_K, TRANSPOSED)

    @gluon.jit
    def rows_bits(BITMAPS, slot, rows, col0, LAYOUT: gl.constexpr, BLOCK_C: gl.constexpr, TILE_Q: gl.constexpr,
                  TILE_K: gl.constexpr, TRANSPOSED: gl.constexpr):
        """``block_bits`` for any vector of tile rows (the packed rows of a decode tile), given in
        the row slice of ``LAYOUT``. One 32-bit word load per (row, word), broadcast along the row."""
        WORDS: gl.constexpr = TILE_K // 32
        N_WORDS: gl.constexpr = (BLOCK_C + 31) // 32
        ROW_DIM: gl.constexpr = 0 if TRANSPOSED else 1  # the layout dim a row vector is sliced from
        cols = col0 + gl.arange(0, BLOCK_C, layout=gl.SliceLayout(1 - ROW_DIM, LAYOUT))
        base = BITMAPS + slot.to(gl.int64) * (TILE_Q * WORDS) + rows * WORDS + col0 // 32
        word_of_col = cols // 32 - col0 // 32
        if TRANSPOSED:
            shift = (cols % 32)[:, None]
            bits = (gl.load(base)[None, :] >> shift) & 1
            for w in gl.static_range(1, N_WORDS):
                bits = gl.where((word_of_col == w)[:, None], (gl.load(base + w)[None, :] >> shift) & 1, bits)
        else:
            shift = (cols % 32)[None, :]
            bits = (gl.load(base)[:, None] >> shift) & 1
            for w in gl.static_range(1, N_WORDS):
                bits = gl.where((word_of_col == w)[None, :], (gl.load(base + w)[:, None] >> shift) & 1, bits)
        return bits != 0
