"""Small Triton helpers shared by the forward and backward kernels."""
import triton
import triton.language as tl

LOG2E = 1.4426950408889634
LN2 = 0.6931471805599453


@triton.jit
def tile_bits(bitmaps, slot, row0, col0, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr,
              TILE_Q: tl.constexpr, TILE_K: tl.constexpr, TRANSPOSED: tl.constexpr = False):
    """Bits of rows [row0, row0+BLOCK_R) x columns [col0, col0+BLOCK_C) of partial tile ``slot``
    (coordinates inside the tile) -> (BLOCK_R, BLOCK_C) bool, or (BLOCK_C, BLOCK_R) with
    ``TRANSPOSED`` (keys on rows, for the dK/dV kernel). Layout: see BlockMap.

    Loads one 32-bit word per (row, word) — a (BLOCK_R,) vector each — and broadcasts it
    along the row, instead of one load per element."""
    WORDS: tl.constexpr = TILE_K // 32
    N_WORDS: tl.constexpr = (BLOCK_C + 31) // 32
    rows = row0 + tl.arange(0, BLOCK_R)
    cols = col0 + tl.arange(0, BLOCK_C)
    base = bitmaps + tl.cast(slot, tl.int64) * (TILE_Q * WORDS) + rows * WORDS + col0 // 32
    word_of_col = cols // 32 - col0 // 32
    if TRANSPOSED:
        shift = (cols % 32)[:, None]
        bits = (tl.load(base)[None, :] >> shift) & 1
        for w in tl.static_range(1, N_WORDS):
            bits = tl.where((word_of_col == w)[:, None], (tl.load(base + w)[None, :] >> shift) & 1, bits)
    else:
        shift = (cols % 32)[None, :]
        bits = (tl.load(base)[:, None] >> shift) & 1
        for w in tl.static_range(1, N_WORDS):
            bits = tl.where((word_of_col == w)[None, :], (tl.load(base + w)[:, None] >> shift) & 1, bits)
    return bits != 0


@triton.jit
def load_kv(k_base, v_base, offs_k, skn, svn, mask, IN_BOUNDS: tl.constexpr):
    """K and V rows ``offs_k`` (BLOCK_N,) -> two (BLOCK_N, BLOCK_D) tiles. ``IN_BOUNDS``: every
    element exists (full tiles with an unpadded head dim), so the loads need no mask."""
    k_ptrs = k_base + offs_k[:, None] * skn
    v_ptrs = v_base + offs_k[:, None] * svn
    if IN_BOUNDS:
        return tl.load(k_ptrs), tl.load(v_ptrs)
    return tl.load(k_ptrs, mask=mask, other=0.0), tl.load(v_ptrs, mask=mask, other=0.0)


@triton.jit
def tanh(x):
    # tanh from exp2 (portable across Triton versions and the interpreter); saturates cleanly
    return 1.0 - 2.0 / (tl.math.exp2(x * (2.0 * 1.4426950408889634)) + 1.0)


@triton.jit
def scores_log2(qk, scale, softcap, HAS_SOFTCAP: tl.constexpr):
    """Raw q.k -> scores in log2 units (for exp2), with optional softcap. Also returns the
    tanh value the backward needs (0 when there is no softcap)."""
    if HAS_SOFTCAP:
        t = tanh(qk * (scale / softcap))
        return t * (softcap * 1.4426950408889634), t
    else:
        return qk * (scale * 1.4426950408889634), qk * 0.0
