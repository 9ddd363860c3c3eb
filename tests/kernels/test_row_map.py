"""The Triton build of single-query-tile maps (``kernels/row_map.py``) equals the torch build
field for field, padding included: under the interpreter on CPU tensors and on the GPU."""
from __future__ import annotations

import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import maskattn as ma
from helpers import Ctx, check_block_map, composed_masks
from maskattn.compile_row import _row_lists_torch
from maskattn.kernels.row_map import build_row_lists
from maskattn.masks.grid import TileGrid

DEVICES = [
    pytest.param("cpu", marks=pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1",
                                                 reason="Triton kernels on CPU tensors need TRITON_INTERPRET=1")),
    pytest.param("cuda", marks=[pytest.mark.gpu,
                                pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]),
]


def _bits(mask: ma.Mask, q_len: int, kv_len: int, offsets: torch.Tensor, device: str) -> torch.Tensor:
    """(B, H, Lq, Lk) bool as compile_row evaluates it (broadcast strides kept)."""
    m = mask.to(device)
    nb, nh = max(m.batch_size, offsets.numel()), m.num_heads
    off = offsets.to(device).view(-1, 1, 1, 1)
    i = torch.arange(q_len, device=device).view(1, 1, -1, 1) + off
    b = torch.arange(nb, device=device).view(-1, 1, 1, 1)
    h = torch.arange(nh, device=device).view(1, -1, 1, 1)
    j = torch.arange(kv_len, device=device).view(1, 1, 1, -1)
    return m._allowed(b, h, i, j, off).expand(nb, nh, q_len, kv_len)


@st.composite
def row_cases(draw):
    block_q = draw(st.sampled_from([16, 32, 64]))
    q_len = draw(st.integers(1, block_q))
    kv_len = draw(st.one_of(st.integers(1, 400), st.sampled_from([32, 63, 64, 65, 128, 257])))
    ctx = Ctx(q_len, kv_len, draw(st.sampled_from([1, 2, 3])), draw(st.sampled_from([1, 2])))
    mask = draw(composed_masks(ctx, depth=2))
    n_off = draw(st.sampled_from([1, mask.batch_size, 3])) if mask.batch_size == 1 else mask.batch_size
    offsets = torch.tensor(draw(st.lists(st.integers(-q_len - 5, kv_len + 5), min_size=n_off, max_size=n_off)))
    return mask, q_len, kv_len, offsets, block_q, draw(st.sampled_from([32, 64, 128]))


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=40, deadline=None)
@given(case=row_cases())
def test_triton_build_equals_torch_build(device, case):
    mask, q_len, kv_len, offsets, block_q, block_k = case
    bits = _bits(mask, q_len, kv_len, offsets, device)
    got = build_row_lists(bits, q_len, kv_len, block_q, block_k)
    grid = TileGrid(q_len, kv_len, 0, block_q, block_k, torch.device("cpu"))
    want = _row_lists_torch(bits.cpu(), grid)
    assert got.keys() == want.keys()
    for name, value in want.items():
        assert got[name].dtype == value.dtype and got[name].shape == value.shape, name
        assert torch.equal(got[name].cpu(), value), name
        # the fields are views of one buffer: each must start where a fresh tensor would, 16-byte
        # aligned (kernels are specialised on it) and contiguous
        assert got[name].data_ptr() % 16 == 0 and got[name].is_contiguous(), name


@pytest.mark.parametrize("device", DEVICES)
def test_many_groups_and_tiles(device):
    """Groups whose prefix sums cross the kernel's chunks (more than 1024 tiles in all)."""
    masks = [ma.sliding_window(w) for w in (0, 5, 40, 200)]
    mask = ma.per_head(masks) | ma.causal()
    bits = _bits(mask, 16, 33 * 128 + 5, torch.tensor([4000, 4100, 300]), device)
    got = build_row_lists(bits, 16, 33 * 128 + 5, 16, 32)
    want = _row_lists_torch(bits.cpu(), TileGrid(16, 33 * 128 + 5, 0, 16, 32, torch.device("cpu")))
    for name, value in want.items():
        assert torch.equal(got[name].cpu(), value), name


@pytest.mark.parametrize("device", DEVICES)
def test_compiled_single_row_map_is_valid(device):
    """compile_mask of a one-query-tile map: every format invariant against materialize() (GPU
    maps carry padded lists: compared up to their pointers' last value)."""
    mask = ma.tree([-1, 0, 0, 1, 1, 2, 2, 3, 5, 5], prefix=300)
    bm = ma.compile_mask(mask.to(device), 10, 310, block_q=16, block_k=64, device=device).to("cpu")
    n_full, n_part = int(bm.full_ptr[-1]), int(bm.part_ptr[-1])
    for name, size in (("full_idx", n_full), ("t_full_idx", n_full), ("part_idx", n_part), ("t_part_idx", n_part),
                       ("t_part_slot", n_part), ("bitmaps", n_part)):
        setattr(bm, name, getattr(bm, name)[:size])
    check_block_map(bm, mask.materialize(10, 310))
