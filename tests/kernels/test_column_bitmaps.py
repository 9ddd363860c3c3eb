"""Key-major bitmaps of the column view (``kernels/column_bitmaps.py``, read by the Hopper
backward's partial blocks), CPU: every entry is the transpose of its partial tile's bitmap."""
import pytest
import torch

import maskattn as ma
from benchmarks import families
from maskattn.kernels import column_bitmaps as column_bitmaps_module
from maskattn.kernels.column_bitmaps import column_bitmaps, transpose_bitmaps


def _bits(words: torch.Tensor, n: int) -> torch.Tensor:
    """(..., n // 32) int32 words -> (..., n) bits, bit c % 32 of word c // 32."""
    return ((words[..., None] >> torch.arange(32, dtype=torch.int32)) & 1).reshape(*words.shape[:-1], n)


@pytest.mark.parametrize("shape", [(3, 128, 128), (2, 64, 128), (2, 128, 64), (0, 128, 128), (5, 128, 128)])
def test_transpose_bitmaps_transposes_each_tile(shape, monkeypatch):
    n, bq, bk = shape
    if n == 5:  # tiles in several chunks, the last one short
        monkeypatch.setattr(column_bitmaps_module, "_CHUNK", 2)
    bits = torch.rand(n, bq, bk, generator=torch.Generator().manual_seed(n)) < 0.5
    bits[..., 31] = True  # the sign bit of a word
    weights = torch.ones((), dtype=torch.int32) << torch.arange(32, dtype=torch.int32)
    words = (bits.reshape(n, bq, bk // 32, 32).int() * weights).sum(-1, dtype=torch.int32)
    out = transpose_bitmaps(words, bq, bk)
    assert out.shape == (n, bk, bq // 32) and out.dtype == torch.int32
    assert torch.equal(_bits(out, bq).bool(), bits.transpose(1, 2))


@pytest.mark.parametrize("case", ["documents", "sliding", "tree", "per_head", "odd_lengths"])
def test_column_bitmaps_are_the_transposed_tiles_of_the_column_view(case):
    lq = lk = 1000
    if case == "per_head":
        g = torch.Generator().manual_seed(0)
        mask = ma.dense(torch.rand(2, 3, 300, 500, generator=g) < 0.3)
        lq, lk = 300, 500
    elif case == "odd_lengths":
        mask, lq, lk = ma.causal(), 333, 517
    else:
        mask = families.mask(case, lq)
    bm = ma.compile_mask(mask, lq, lk)
    cols = column_bitmaps(bm)
    n = int(bm.t_part_ptr[-1])
    assert cols.shape[1:] == (bm.block_k, bm.block_q // 32) and cols.shape[0] >= n
    query_major = _bits(bm.bitmaps[bm.t_part_slot[:n].long()], bm.block_k)  # [entry, query, key]
    assert torch.equal(_bits(cols[:n], bm.block_q), query_major.transpose(1, 2))
    assert column_bitmaps(bm) is cols  # kept on the map


def test_column_bitmaps_of_a_map_without_partial_tiles():
    bm = ma.compile_mask(ma.full(), 256, 256)
    assert column_bitmaps(bm).shape[0] == bm.t_part_slot.shape[0]
