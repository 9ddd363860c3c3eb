"""What the Hopper kernels written in Gluon (``flash_fwd_sm90``, ``flash_bwd_sm90``,
``flash_bwd_sm90_wide``, ``flash_decode_sm90``) share: the Gluon imports, the inputs they can take,
shared-memory layouts, the bitmap readers (query-major ``BlockMap.bitmaps``; the backward's
key-major ``column_bitmaps``), the masking of a block by its bitmap words (``where_words``) and the
backwards' in-place cleaning of K (``zero_non_finite``). Gluon functions cannot call
``@triton.jit`` helpers (they need explicit layouts), so ``rows_words`` + ``where_words`` restate
``common.rows_bits`` for the wgmma register layouts, in two steps (the loads issued early)."""
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
        ``LAYOUT`` (keys on rows). Issue them early; ``where_words`` applies them."""
        QWORDS: gl.constexpr = TILE_Q // 32
        keys = key0 + gl.arange(0, BLOCK_K, layout=gl.SliceLayout(1, LAYOUT))
        base = COL_BITS + entry.to(gl.int64) * (TILE_K * QWORDS) + keys * QWORDS + q0 // 32
        return gl.load(base), gl.load(base + 1)

    @gluon.jit
    def rows_words(BITMAPS, slot, rows, col0, LIVE, TILE_Q: gl.constexpr, TILE_K: gl.constexpr,
                   BLOCK_C: gl.constexpr):
        """The bitmap words of tile rows ``rows`` (a vector in some layout's row slice; the packed
        rows of a decode tile too) over tile columns [col0, col0 + BLOCK_C) of partial tile
        ``slot`` (query-major ``BlockMap.bitmaps``; BLOCK_C <= 128, col0 a multiple of 32): four
        int32 vectors like ``rows`` (words past BLOCK_C repeat the first), loaded only where
        ``LIVE`` (else 0). Issue them before the scores' product is waited for (a load after it
        puts an L2 round trip on the softmax's path); ``where_words`` applies them."""
        WORDS: gl.constexpr = TILE_K // 32
        base = BITMAPS + slot.to(gl.int64) * (TILE_Q * WORDS) + rows * WORDS + col0 // 32
        w0 = gl.load(base, mask=LIVE, other=0)
        w1 = w0
        w2 = w0
        w3 = w0
        if BLOCK_C > 32:
            w1 = gl.load(base + 1, mask=LIVE, other=0)
        if BLOCK_C > 64:
            w2 = gl.load(base + 2, mask=LIVE, other=0)
            w3 = gl.load(base + 3, mask=LIVE, other=0)
        return w0, w1, w2, w3

    @gluon.jit
    def _test_select(x, word, bit, FILL: gl.constexpr):
        """x where (word & bit) != 0, else FILL, element by element in one inline-PTX statement.
        Written as ``gl.where`` on ``(word & bit) != 0``, LLVM vectorises the tests into a vector
        of booleans, hoists it above the caller's branch and packs it into registers and back
        (session 33: 671 instructions a thread for a 64 x 128 partial block against 285 for a
        full one); an asm statement is neither vectorised nor moved."""
        imm: gl.constexpr = "0fFF800000" if FILL == float("-inf") else ("0f7F800000" if FILL == float("inf")
                                                                     else "0f00000000")
        gl.static_assert((FILL == float("-inf")) or (FILL == float("inf")) or (FILL == 0.0),
                         "where_words: FILL is -inf, inf or 0")
        return gl.inline_asm_elementwise(
            "{ .reg .pred %p; .reg .b32 %t; and.b32 %t, $2, $3; setp.ne.b32 %p, %t, 0; selp.f32 $0, $1, "
            + imm + ", %p; }",
            "=f,f,r,r", [x, word, bit], dtype=gl.float32, is_pure=True, pack=1)

    @gluon.jit
    def where_words(x, w0, w1, w2, w3, FILL: gl.constexpr):
        """x (M, N) fp32 in a wgmma accumulator layout (N = 8, 16, 32, 64 or 128), masked by its
        rows' bitmap words: x where the bit of (row, column) is set, else ``FILL`` (-inf, inf or 0).
        w0..w3: (M,) int32 in the row slice of x's layout, word i holding columns [32 i, 32 i + 32)
        (``rows_words``; with N = 64 only w0, w1 are read). A thread of that layout holds columns
        8 k + 2 t + b of its rows (k and b its registers, t its lane in the row's quad), so in the
        4-d view (row, k, t, b) word i is shifted by 2 t once a row and the bit a register tests,
        8 (k % 4) + b, is a constant."""
        M: gl.constexpr = x.shape[0]
        N: gl.constexpr = x.shape[1]
        x4 = x.reshape([M, N // 8, 4, 2])
        L4: gl.constexpr = x4.type.layout
        L3: gl.constexpr = gl.SliceLayout(3, L4)  # (row, k, t)
        ROWS: gl.constexpr = gl.SliceLayout(1, gl.SliceLayout(2, L3))
        k = gl.arange(0, N // 8, layout=gl.SliceLayout(0, gl.SliceLayout(2, L3)))
        t = gl.arange(0, 4, layout=gl.SliceLayout(0, gl.SliceLayout(1, L3)))
        b = gl.arange(0, 2, layout=gl.SliceLayout(0, gl.SliceLayout(1, gl.SliceLayout(2, L4))))
        k3 = gl.expand_dims(gl.expand_dims(k, 0), 2)  # (1, N / 8, 1)
        word = gl.expand_dims(gl.expand_dims(gl.convert_layout(w0, ROWS), 1), 2)  # (M, 1, 1)
        if N > 32:
            word = gl.where(k3 >= 4, gl.expand_dims(gl.expand_dims(gl.convert_layout(w1, ROWS), 1), 2), word)
        if N > 64:
            word = gl.where(k3 >= 8, gl.expand_dims(gl.expand_dims(gl.convert_layout(w2, ROWS), 1), 2), word)
            word = gl.where(k3 >= 12, gl.expand_dims(gl.expand_dims(gl.convert_layout(w3, ROWS), 1), 2), word)
        word = word >> (2 * gl.expand_dims(gl.expand_dims(t, 0), 1))  # (M, N / 8, 4)
        bit = 1 << (8 * (gl.expand_dims(gl.expand_dims(gl.expand_dims(k, 0), 2), 3) % 4)
                    + gl.expand_dims(gl.expand_dims(gl.expand_dims(b, 0), 1), 2))  # (1, N / 8, 1, 2)
        out = _test_select(x4, gl.expand_dims(word, 3), bit, FILL)
        # the same threads hold the same elements: a conversion in name only
        return gl.convert_layout(out.reshape([M, N]), x.type.layout)
