"""The one-launch build of band maps (``kernels/band_row_map.py``) equals the generic torch
build field for field, padding included: under the interpreter on CPU tensors and on the GPU."""
from __future__ import annotations

import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import maskattn as ma
from helpers import check_block_map
from maskattn.compile_row import _row_lists_torch
from maskattn.kernels.band_row_map import build_band_row_lists
from maskattn.masks.band import Band
from maskattn.masks.checks import MAX_WINDOW
from maskattn.masks.grid import TileGrid

DEVICES = [
    pytest.param("cpu", marks=pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1",
                                                 reason="Triton kernels on CPU tensors need TRITON_INTERPRET=1")),
    pytest.param("cuda", marks=[pytest.mark.gpu,
                                pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]),
]


def _torch_build(left, right, q_offset, q_len, kv_len, block_q, block_k):
    band = Band(left, right, "band")
    i = torch.arange(q_len).view(1, 1, -1, 1) + q_offset
    j = torch.arange(kv_len).view(1, 1, 1, -1)
    bits = band._allowed(torch.zeros(1, 1, 1, 1, dtype=torch.long), torch.zeros(1, 1, 1, 1, dtype=torch.long),
                         i, j, q_offset).expand(1, 1, q_len, kv_len)
    return _row_lists_torch(bits, TileGrid(q_len, kv_len, q_offset, block_q, block_k, torch.device("cpu")))


def _check_equal(left, right, q_offset, q_len, kv_len, block_q, block_k, device):
    band = Band(left, right, "")  # windows capped as compile_mask sees them
    left, right = band.left, band.right
    got = build_band_row_lists(left, right, q_offset, q_len, kv_len, block_q, block_k, torch.device(device))
    want = _torch_build(left, right, q_offset, q_len, kv_len, block_q, block_k)
    assert got.keys() == want.keys()
    for name, value in want.items():
        assert got[name].dtype == value.dtype and got[name].shape == value.shape, name
        assert torch.equal(got[name].cpu(), value), name
        assert got[name].data_ptr() % 16 == 0 and got[name].is_contiguous(), name


window = st.one_of(st.none(), st.integers(-70, 300))


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=60, deadline=None)
@given(left=window, right=window, block_q=st.sampled_from([16, 32, 64]), block_k=st.sampled_from([32, 64, 128]),
       data=st.data())
def test_band_build_equals_torch_build(device, left, right, block_q, block_k, data):
    q_len = data.draw(st.integers(1, block_q))
    kv_len = data.draw(st.one_of(st.integers(1, 700), st.sampled_from([32, 63, 64, 65, 128, 257])))
    q_offset = data.draw(st.integers(-q_len - 40, kv_len + 40))
    _check_equal(left, right, q_offset, q_len, kv_len, block_q, block_k, device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("left, right, q_offset", [
    (None, 0, 2**62 - 100),  # positions near the int64 limits
    (MAX_WINDOW, MAX_WINDOW, -(2**62) + 1),
    (-MAX_WINDOW, MAX_WINDOW, 2**62 - 1),
    (MAX_WINDOW, -MAX_WINDOW, -(2**62) + 1),
    (None, None, 5),
    (3, None, 1000),
])
def test_band_build_at_extreme_positions(device, left, right, q_offset):
    _check_equal(left, right, q_offset, 7, 300, 16, 64, device)


@pytest.mark.parametrize("device", DEVICES)
def test_rank_scan_over_several_chunks(device, monkeypatch):
    """More key tiles than one chunk of the rank scan, every class present (on the CPU with
    chunks of 16 tiles: the interpreter runs one program at a time)."""
    from maskattn.kernels import band_row_map
    if device == "cpu":
        monkeypatch.setattr(band_row_map, "_MAX_CHUNK", 16)
    tiles = 1500 if device == "cuda" else 40
    for left, right in ((None, 0), (tiles * 12, 0), (tiles * 24, 40)):
        _check_equal(left, right, tiles * 32 - 9, 16, tiles * 32 + 5, 16, 32, device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mask", [ma.causal(), ma.sliding_window(100), ma.sliding_window(20, 30), ma.full()],
                         ids=repr)
def test_compile_mask_takes_the_band_build(device, mask, monkeypatch):
    """compile_mask of a band on one query tile goes through the band build and gives a valid
    map: every format invariant against materialize() (GPU maps: lists up to their pointers)."""
    import maskattn.compile_row as cr
    calls = []
    monkeypatch.setattr(cr, "build_band_row_lists", lambda *a: calls.append(a) or build_band_row_lists(*a))
    monkeypatch.setattr(cr, "build_row_lists", lambda *a: pytest.fail("the generic build ran for a band"))
    bm = ma.compile_mask(mask, 5, 333, block_q=16, block_k=64, device=device).to("cpu")
    assert len(calls) == 1
    n_full, n_part = int(bm.full_ptr[-1]), int(bm.part_ptr[-1])
    for name, size in (("full_idx", n_full), ("t_full_idx", n_full), ("part_idx", n_part), ("t_part_idx", n_part),
                       ("t_part_slot", n_part), ("bitmaps", n_part)):
        if device == "cpu":  # trimmed to the exact sizes on the CPU; padded on the GPU
            assert getattr(bm, name).shape[0] == size, name
        setattr(bm, name, getattr(bm, name)[:size])
    check_block_map(bm, mask.materialize(5, 333))
