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
    ``TRANSPOSED`` (keys on rows, for the dK/dV kernel). Layout: see BlockMap."""
    return rows_bits(bitmaps, slot, row0 + tl.arange(0, BLOCK_R), col0, BLOCK_C, TILE_Q, TILE_K, TRANSPOSED)


@triton.jit
def rows_bits(bitmaps, slot, rows, col0, BLOCK_C: tl.constexpr, TILE_Q: tl.constexpr, TILE_K: tl.constexpr,
              TRANSPOSED: tl.constexpr = False):
    """Bits of tile rows ``rows`` (any (BLOCK_R,) vector, e.g. the packed query rows of a
    decode tile) x columns [col0, col0+BLOCK_C) of partial tile ``slot``.

    Loads one 32-bit word per (row, word) — a (BLOCK_R,) vector each — and broadcasts it
    along the row, instead of one load per element."""
    WORDS: tl.constexpr = TILE_K // 32
    N_WORDS: tl.constexpr = (BLOCK_C + 31) // 32
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
def softmax_step(acc, m_i, l_i, q, k, v, allowed, scale, softcap,
                 MASKED: tl.constexpr, HAS_SOFTCAP: tl.constexpr, PRECISION: tl.constexpr, NEG_SCALE: tl.constexpr):
    """One online-softmax step of flash attention over a key block: scores q @ k^T (masked by
    ``allowed`` when MASKED), running row max ``m_i`` and sum ``l_i`` (log2 units), and
    ``acc += P @ v`` rescaled. q: (M, D), k, v: (N, D), acc: (M, D) fp32."""
    qk = tl.dot(q, tl.trans(k), input_precision=PRECISION)
    if MASKED or HAS_SOFTCAP:
        s, _ = scores_log2(qk, scale, softcap, HAS_SOFTCAP)
        if MASKED:
            s = tl.where(allowed, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        # a row with nothing allowed so far keeps m = -inf; subtract 0 instead of NaN
        m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
        p = tl.math.exp2(s - m_use[:, None])
    else:  # unmasked: scale folded into one multiply-add per score (the row max of qk * c
        # is c times the row max of qk for c > 0, the row min for c < 0)
        c = scale * 1.4426950408889634
        m_new = tl.maximum(m_i, (tl.min(qk, 1) if NEG_SCALE else tl.max(qk, 1)) * c)
        m_use = m_new
        p = tl.math.exp2(qk * c - m_use[:, None])
    alpha = tl.math.exp2(m_i - m_use)
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = tl.dot(p.to(v.dtype), v, acc * alpha[:, None], input_precision=PRECISION)
    return acc, m_new, l_i


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
