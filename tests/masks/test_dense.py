"""dense(mask): an element-wise mask indexed by (query row, key column), not by position."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import maskattn as ma
from helpers import LENGTH_CASES, loop_dense


def _random(shape, seed, p=0.5):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < p


@pytest.mark.parametrize("q_len,kv_len,q_offset", LENGTH_CASES)
@pytest.mark.parametrize("lead", [(), (2,), (2, 3)], ids=["2d", "3d", "4d"])
def test_dense_matches_elements(q_len, kv_len, q_offset, lead):
    m = _random(lead + (q_len, kv_len), q_len * 100 + kv_len)
    bh = {0: (1, 1), 1: (2, 1), 2: (2, 3)}[len(lead)]  # (Lq, Lk) -> (1, 1, ...), (B, Lq, Lk) -> (B, 1, ...)
    want = loop_dense(m.reshape(*bh, q_len, kv_len))
    got = ma.dense(m).materialize(q_len, kv_len, q_offset=q_offset)
    assert got.dtype == torch.bool and got.shape == want.shape
    assert torch.equal(got, want)


def test_dense_ignores_q_offset():
    m = _random((6, 9), 0)
    for off in (None, 0, -10, 3, 50):
        assert torch.equal(ma.dense(m).materialize(6, 9, q_offset=off)[0, 0], m)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.int8])
def test_integer_zero_one_masks(dtype):
    m = _random((2, 5, 7), 1)
    assert torch.equal(ma.dense(m.to(dtype)).materialize(5, 7), m[:, None])


@settings(max_examples=20, deadline=None)
@given(q_len=st.integers(1, 30), kv_len=st.integers(1, 30), heads=st.integers(1, 3), seed=st.integers(0, 10**6),
       q_offset=st.one_of(st.none(), st.integers(-40, 40)))
def test_random_dense(q_len, kv_len, heads, seed, q_offset):
    m = _random((2, heads, q_len, kv_len), seed, 0.3)
    assert torch.equal(ma.dense(m).materialize(q_len, kv_len, q_offset=q_offset), loop_dense(m))


def test_repr():
    assert repr(ma.dense(torch.ones(3, 4, dtype=torch.bool))) == "dense(<bool (1, 1, 3, 4)>)"
    assert repr(ma.dense(torch.ones(2, 3, 4, dtype=torch.bool))) == "dense(<bool (2, 1, 3, 4)>)"


@pytest.mark.parametrize("bad", [torch.ones(4, 4), torch.ones(4, 4, dtype=torch.float16),
                                 torch.ones(4, 4, dtype=torch.complex64), [[True, False]], None])
def test_wrong_dtype_raises(bad):
    with pytest.raises(TypeError, match="mask"):
        ma.dense(bad)


@pytest.mark.parametrize("shape", [(4,), (1, 1, 1, 4, 4), ()])
def test_wrong_ndim_raises(shape):
    with pytest.raises(ValueError, match="mask"):
        ma.dense(torch.ones(shape, dtype=torch.bool))


def test_non_binary_ints_raise():
    with pytest.raises(ValueError, match="mask"):
        ma.dense(torch.tensor([[0, 3]]))


@pytest.mark.parametrize("q_len,kv_len", [(4, 6), (5, 5), (5, 7), (6, 5)])
def test_shape_mismatch_raises_at_compile(q_len, kv_len):
    mask = ma.dense(torch.ones(2, 5, 6, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask"):
        ma.compile_mask(mask, q_len, kv_len, block_q=16, block_k=32)
    with pytest.raises(ValueError, match="q_len"):
        mask.materialize(q_len, kv_len)
