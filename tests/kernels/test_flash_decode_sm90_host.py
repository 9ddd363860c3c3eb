"""Host-side routing of split-KV decoding to the Hopper kernel (CPU: no kernel runs)."""
import pytest
import torch

import maskattn as ma
from maskattn.kernels import decode, flash_decode_sm90


def _args(lq=64, heads=1):
    q = torch.randn(1, 4, lq, 128, dtype=torch.bfloat16)
    mask = ma.causal() if heads == 1 else ma.dense(torch.ones(1, heads, lq, 4096, dtype=torch.bool))
    return q, ma.compile_mask(mask, lq, 4096)


def test_not_used_off_the_gpu():
    q, bm = _args()
    assert not flash_decode_sm90.supported(q, bm, 128, None, 256, 64)


@pytest.mark.parametrize("packed_rows,units,heads,d_tma,softcap,expected", [
    (256, 64, 1, 128, None, True),    # a 64-node tree, GQA 4, batch 4
    (128, 32, 1, 128, None, True),    # the smallest block and unit count taken
    (64, 64, 1, 128, None, False),    # half a tile of packed rows: the portable kernel is faster
    (256, 16, 1, 128, None, False),   # batch 1: host-bound, the portable launch is cheaper
    (256, 64, 4, 128, None, False),   # per-head masks: no packing
    (256, 64, 1, 64, None, False),    # head dim 64
    (256, 64, 1, 128, 30.0, False),   # softcap
])
def test_routing(monkeypatch, packed_rows, units, heads, d_tma, softcap, expected):
    monkeypatch.setattr(flash_decode_sm90, "eligible", lambda q, s: s is None)  # as on an sm_90 GPU
    q, bm = _args(heads=heads)
    assert flash_decode_sm90.supported(q, bm, d_tma, softcap, packed_rows, units) == expected


def test_row_blocks_and_use_decode():
    assert [flash_decode_sm90.row_blocks(n) for n in (1, 128, 129, 256, 512)] == [1, 1, 2, 2, 4]
    q, bm = _args(lq=64)
    assert decode.use_decode(bm, 64)
