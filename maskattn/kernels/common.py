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
def row_desc(base, b, h, sb, sh, sl, L, D_TMA, BLOCK_L: tl.constexpr, BLOCK_D: tl.constexpr):
    """Tensor descriptor (TMA) of the (L, D_TMA) matrix of batch row ``b``, head ``h`` of a
    (B, H, L, D_TMA) tensor with strides (sb, sh, sl, 1), read in (BLOCK_L, BLOCK_D) blocks.
    Rows past L and columns past D_TMA read as zeros."""
    return tl.make_tensor_descriptor(base + b.to(tl.int64) * sb + h.to(tl.int64) * sh, shape=[L, D_TMA],
                                     strides=[sl, 1], block_shape=[BLOCK_L, BLOCK_D])


@triton.jit
def finite_or_zero(x):
    """Non-finite entries of a K or V tile -> 0, so that a masked-out NaN / Inf (a padded or
    unwritten cache slot) cannot reach other rows through 0 * inf in a matrix product."""
    return tl.where(tl.abs(x) < float("inf"), x, 0.0)


@triton.jit
def drop_nonfinite(x):
    """NaN entries of a partial product -> 0: where a hidden NaN / Inf key or value met a zero
    weight (0 * inf), it must not reach a row that may not see it."""
    return tl.where(x == x, x, 0.0)


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
