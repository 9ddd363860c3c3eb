"""``sm90_common.where_words`` (a block masked by its rows' bitmap words, the Hopper kernels'
partial-tile path) against torch, on the wgmma accumulator layouts of every width the kernels use
(GPU only: Gluon kernels do not run under the interpreter)."""
import math

import pytest
import torch

from maskattn.kernels import sm90_common

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(
    not (torch.cuda.is_available() and sm90_common.HAVE_GLUON and torch.cuda.get_device_capability() == (9, 0)),
    reason="needs an sm_90 GPU and Gluon")]

if sm90_common.HAVE_GLUON:
    from maskattn.kernels.sm90_common import gl, gluon, where_words

    @gluon.jit
    def _where_words_kernel(X, WORDS, OUT, M: gl.constexpr, N: gl.constexpr, FILL: gl.constexpr):
        """X (M, N) fp32 held as one warpgroup's wgmma accumulator, WORDS (M, 4) int32 -> OUT (M, N)."""
        LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                         instr_shape=[16, N, 16])
        rows = gl.arange(0, M, layout=gl.SliceLayout(1, LAYOUT))
        cols = gl.arange(0, N, layout=gl.SliceLayout(0, LAYOUT))
        x = gl.load(X + rows[:, None] * N + cols[None, :])
        w = WORDS + rows * 4
        out = where_words(x, gl.load(w), gl.load(w + 1), gl.load(w + 2), gl.load(w + 3), FILL)
        gl.store(OUT + rows[:, None] * N + cols[None, :], out)


def _where_words(x, words, fill):
    out = torch.empty_like(x)
    _where_words_kernel[(1,)](x, words, out, x.shape[0], x.shape[1], fill, num_warps=4)
    return out


def _bits(words, n):
    """(M, 4) int32 words -> (M, n) bool: bit c % 32 of word c // 32."""
    cols = torch.arange(n, device=words.device)
    return ((words[:, cols // 32] >> (cols % 32)) & 1) != 0


@pytest.mark.parametrize("fill", [float("-inf"), float("inf"), 0.0])
@pytest.mark.parametrize("n", [16, 32, 64, 128])
def test_where_words_matches_torch(n, fill):
    g = torch.Generator(device="cuda").manual_seed(n)
    x = torch.randn(64, n, device="cuda", generator=g) * 10
    x[3, 1], x[5, n - 1], x[7, n // 2] = math.nan, math.inf, -math.inf  # passed through where allowed
    words = torch.randint(-2**31, 2**31 - 1, (64, 4), device="cuda", dtype=torch.int32, generator=g)
    words[0], words[1], words[2] = 0, -1, -2**31  # nothing, everything, only column 31 of each word
    if n < 32:  # the words' high bits name columns past n: set them so that a wrong shift shows
        words[4:] |= ~((1 << n) - 1)
    allowed = _bits(words, n)
    out = _where_words(x, words, fill)
    expected = torch.where(allowed, x, torch.full_like(x, fill))
    assert torch.equal(out.isnan(), expected.isnan())
    assert torch.equal(out.nan_to_num(), expected.nan_to_num())
