"""prefix_lm(prefix_len) against its written-out definition: j < P or j <= i."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import maskattn as ma
from helpers import LENGTH_CASES, assert_materialize_matches, prefix_lm_rule


@pytest.mark.parametrize("q_len,kv_len,q_offset", LENGTH_CASES)
@pytest.mark.parametrize("prefix", [0, 1, 5, 40])
def test_int_prefix_matches_definition(q_len, kv_len, q_offset, prefix):
    assert_materialize_matches(ma.prefix_lm(prefix), prefix_lm_rule([prefix]), q_len, kv_len, q_offset)


@pytest.mark.parametrize("q_len,kv_len,q_offset", LENGTH_CASES)
def test_per_batch_prefix_matches_definition(q_len, kv_len, q_offset):
    lens = [0, 3, kv_len, kv_len + 2]
    assert_materialize_matches(ma.prefix_lm(torch.tensor(lens)), prefix_lm_rule(lens), q_len, kv_len, q_offset,
                               batch=4)


@settings(max_examples=30, deadline=None)
@given(lens=st.lists(st.integers(0, 40), min_size=1, max_size=3), q_len=st.integers(1, 35),
       kv_len=st.integers(1, 35), q_offset=st.one_of(st.none(), st.integers(-40, 40)))
def test_random_prefix(lens, q_len, kv_len, q_offset):
    assert_materialize_matches(ma.prefix_lm(torch.tensor(lens)), prefix_lm_rule(lens), q_len, kv_len, q_offset,
                               batch=len(lens))


def test_hand_written_example():
    assert ma.prefix_lm(2).materialize(4, 4)[0, 0].int().tolist() == [[1, 1, 0, 0],
                                                                      [1, 1, 0, 0],
                                                                      [1, 1, 1, 0],
                                                                      [1, 1, 1, 1]]


def test_prefix_zero_is_causal():
    assert torch.equal(ma.prefix_lm(0).materialize(9, 13), ma.causal().materialize(9, 13))


def test_reprs():
    assert repr(ma.prefix_lm(3)) == "prefix_lm(3)"
    assert repr(ma.prefix_lm(torch.tensor([1, 2]))) == "prefix_lm(<int64 (2,)>)"
    assert repr(ma.prefix_lm(3) & ma.causal()) == "prefix_lm(3) & causal()"


@pytest.mark.parametrize("bad", [-1, torch.tensor([2, -1])])
def test_negative_prefix_raises(bad):
    with pytest.raises(ValueError, match="prefix_len"):
        ma.prefix_lm(bad)


@pytest.mark.parametrize("bad", [1.5, "3", None, torch.tensor([1.0, 2.0]), torch.tensor([True])])
def test_non_int_prefix_raises(bad):
    with pytest.raises(TypeError, match="prefix_len"):
        ma.prefix_lm(bad)
