"""``kernels/real_rows.py``: the decode kernels' row view of a one-query-tile map, with the partial
tiles whose real rows allow every key moved to the full list. Checked against a torch rebuild
from the original map (lists in order, the kept tiles' bitmaps, zeros past the counts), under the
interpreter on CPU tensors and on the GPU; decode outputs through it are checked against the
float64 reference by the decode tests (``test_forward.py``, ``test_flash_decode_sm90.py``)."""
from __future__ import annotations

import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import maskattn as ma
from helpers import Ctx, composed_masks
from maskattn.kernels.real_rows import convertible, real_row_map

DEVICES = [
    pytest.param("cpu", marks=pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1",
                                                 reason="Triton kernels on CPU tensors need TRITON_INTERPRET=1")),
    pytest.param("cuda", marks=[pytest.mark.gpu,
                                pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]),
]


def _expected(bm):
    """(full list, partial list, partial bitmaps) of map row 0 after the conversion, in torch."""
    bm = bm.to("cpu")
    nf, np_ = int(bm.full_ptr[1]), int(bm.part_ptr[1])
    words = bm.bitmaps[:np_]
    every = (words[:, :bm.q_len] == -1).flatten(1).all(1)
    full = torch.cat((bm.full_idx[:nf], bm.part_idx[:np_][every]))
    return full, bm.part_idx[:np_][~every], words[~every]


def _check(bm):
    real = real_row_map(bm)
    full, part, words = _expected(bm)
    nf, np_ = int(real.full_ptr[1]), int(real.part_ptr[1])
    assert int(real.full_ptr[0]) == 0 and int(real.part_ptr[0]) == 0
    assert torch.equal(real.full_idx[:nf].cpu(), full)
    assert torch.equal(real.part_idx[:np_].cpu(), part)
    assert torch.equal(real.bitmaps[:np_].cpu(), words)
    # entries past the counts are zeros, as the map builders leave them
    assert not real.full_idx[nf:].any() and not real.part_idx[np_:].any()
    assert real.full_idx.numel() == bm.full_idx.numel() + bm.part_idx.numel()
    assert real_row_map(bm) is real  # kept on the map: one launch per map
    return real


@st.composite
def single_row_cases(draw):
    block_q = draw(st.sampled_from([16, 64, 128]))
    q_len = draw(st.integers(1, block_q))
    kv_len = draw(st.one_of(st.integers(1, 700), st.sampled_from([64, 127, 128, 129, 512])))
    mask = draw(composed_masks(Ctx(q_len, kv_len, 1, 1), depth=2))
    return mask, q_len, kv_len, block_q, draw(st.sampled_from([32, 64, 128]))


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=30, deadline=None)
@given(case=single_row_cases())
def test_real_row_lists_match_torch(device, case):
    mask, q_len, kv_len, block_q, block_k = case
    bm = ma.compile_mask(mask.to(device), q_len, kv_len, block_q=block_q, block_k=block_k, device=device)
    if not convertible(bm):
        assert real_row_map(bm) is bm
        return
    _check(bm)


@pytest.mark.parametrize("device", DEVICES)
def test_decode_maps_become_full(device):
    """Decoding one token with a causal cache (every tile sticks out past Lq = 1): every tile but
    the one sticking out past Lk moves; a 64-node tree in 128-row tiles keeps only the tiles
    holding tree nodes partial (in 64-row tiles it is left as it is); more entries than one step
    of the kernel."""
    bm = ma.compile_mask(ma.causal().to(device), 1, 150 * 64 + 5, block_k=64, device=device)
    real = _check(bm)
    assert int(real.full_ptr[1]) == 150 and int(real.part_ptr[1]) == 1
    parents = [-1] + [i // 2 for i in range(63)]
    tree = ma.tree(parents, prefix=1000).to(device)
    real = _check(ma.compile_mask(tree, 64, 1064, block_q=128, block_k=64, device=device))
    assert int(real.full_ptr[1]) == 1000 // 64 and int(real.part_ptr[1]) == 2
    # 64 rows in a 64-row tile: the prefix tiles are FULL already, nothing to convert, no launch
    exact = ma.compile_mask(tree, 64, 1064, block_q=64, block_k=64, device=device)
    assert not convertible(exact) and real_row_map(exact) is exact
    assert int(exact.full_ptr[1]) == 1000 // 64


@pytest.mark.parametrize("device", DEVICES)
def test_maps_of_several_rows_are_left_alone(device):
    """Per-head masks and per-batch offsets give several map rows: not converted."""
    heads = ma.per_head([ma.causal(), ma.sliding_window(3)])
    bm = ma.compile_mask(heads.to(device), 2, 300, device=device)
    assert bm.heads == 2 and real_row_map(bm) is bm
    offsets = torch.tensor([10, 200], device=device)
    bm = ma.compile_mask(ma.causal().to(device), 2, 300, q_offset=offsets, device=device)
    assert bm.batch == 2 and real_row_map(bm) is bm
