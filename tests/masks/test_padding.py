"""padding(key_valid) against its written-out definition: key_valid[b, j]."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import maskattn as ma
from helpers import LENGTH_CASES, assert_materialize_matches, padding_rule


@pytest.mark.parametrize("q_len,kv_len,q_offset", LENGTH_CASES)
def test_padding_matches_definition(q_len, kv_len, q_offset):
    valid = torch.rand(3, kv_len, generator=torch.Generator().manual_seed(q_len)) < 0.6
    valid[0] = True
    valid[1] = False  # a batch row that is all padding
    assert_materialize_matches(ma.padding(valid), padding_rule(valid.tolist()), q_len, kv_len, q_offset, batch=3)
    ints = valid.to(torch.int32)  # a Hugging Face 0/1 attention_mask
    assert_materialize_matches(ma.padding(ints), padding_rule(valid.tolist()), q_len, kv_len, q_offset, batch=3)


@settings(max_examples=30, deadline=None)
@given(q_len=st.integers(1, 35), kv_len=st.integers(1, 35), batch=st.integers(1, 3),
       q_offset=st.one_of(st.none(), st.integers(-40, 40)), seed=st.integers(0, 10**6))
def test_random_padding(q_len, kv_len, batch, q_offset, seed):
    valid = torch.rand(batch, kv_len, generator=torch.Generator().manual_seed(seed)) < 0.5
    assert_materialize_matches(ma.padding(valid), padding_rule(valid.tolist()), q_len, kv_len, q_offset, batch=batch)


def test_left_padding_with_causal():
    valid = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    m = (ma.causal() & ma.padding(valid)).materialize(5, 5)
    assert m[0, 0].int().tolist() == [[0, 0, 0, 0, 0],
                                      [0, 0, 0, 0, 0],
                                      [0, 0, 1, 0, 0],
                                      [0, 0, 1, 1, 0],
                                      [0, 0, 1, 1, 1]]
    assert torch.equal(m[1, 0], ma.causal().materialize(5, 5)[0, 0])


def test_repr():
    assert repr(ma.padding(torch.ones(2, 7, dtype=torch.bool))) == "padding(<bool (2, 7)>)"


@pytest.mark.parametrize("bad", [torch.ones(5, dtype=torch.bool), torch.ones(1, 2, 5, dtype=torch.bool)])
def test_wrong_ndim_raises(bad):
    with pytest.raises(ValueError, match="key_valid"):
        ma.padding(bad)


@pytest.mark.parametrize("bad", [torch.ones(2, 5), [[1, 1, 0]], None])
def test_wrong_type_raises(bad):
    with pytest.raises(TypeError, match="key_valid"):
        ma.padding(bad)


def test_non_binary_ints_raise():
    with pytest.raises(ValueError, match="key_valid"):
        ma.padding(torch.tensor([[0, 1, 2]]))


@pytest.mark.parametrize("kv_len", [9, 11])
def test_length_mismatch_raises_at_compile(kv_len):
    mask = ma.padding(torch.ones(2, 10, dtype=torch.bool))
    with pytest.raises(ValueError, match="key_valid"):
        ma.compile_mask(mask, kv_len, kv_len, block_q=16, block_k=32)
    with pytest.raises(ValueError, match="kv_len"):
        mask.materialize(4, kv_len)
