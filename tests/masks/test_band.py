"""causal(), sliding_window(left, right) and full() against their written-out definitions."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import maskattn as ma
from helpers import (LENGTH_CASES, assert_materialize_matches, causal_rule, full_rule, window_rule)


@pytest.mark.parametrize("q_len,kv_len,q_offset", LENGTH_CASES)
def test_causal_matches_definition(q_len, kv_len, q_offset):
    assert_materialize_matches(ma.causal(), causal_rule, q_len, kv_len, q_offset)


@pytest.mark.parametrize("q_len,kv_len,q_offset", LENGTH_CASES)
@pytest.mark.parametrize("left,right", [(0, 0), (1, 0), (3, 2), (0, 4), (50, 0), (2, 50)])
def test_sliding_window_matches_definition(q_len, kv_len, q_offset, left, right):
    assert_materialize_matches(ma.sliding_window(left, right), window_rule(left, right), q_len, kv_len, q_offset)


@pytest.mark.parametrize("q_len,kv_len,q_offset", LENGTH_CASES)
def test_full_matches_definition(q_len, kv_len, q_offset):
    assert_materialize_matches(ma.full(), full_rule, q_len, kv_len, q_offset)


@settings(max_examples=30, deadline=None)
@given(left=st.integers(0, 45), right=st.integers(0, 45), q_len=st.integers(1, 40), kv_len=st.integers(1, 40),
       q_offset=st.one_of(st.none(), st.integers(-45, 45)))
def test_sliding_window_random(left, right, q_len, kv_len, q_offset):
    assert_materialize_matches(ma.sliding_window(left, right), window_rule(left, right), q_len, kv_len, q_offset)


def test_default_alignment_is_bottom_right():
    # 2 queries, 4 keys: rows sit at positions 2 and 3
    assert ma.causal().materialize(2, 4).int().tolist() == [[[[1, 1, 1, 0], [1, 1, 1, 1]]]]
    # 4 queries, 2 keys: rows sit at positions -2, -1, 0, 1
    assert ma.causal().materialize(4, 2).int().tolist() == [[[[0, 0], [0, 0], [1, 0], [1, 1]]]]
    # a Hugging Face sliding_window=3 is sliding_window(2): 3 keys including the query
    assert ma.sliding_window(2).materialize(4, 4)[0, 0, 3].int().tolist() == [0, 1, 1, 1]


def test_materialize_shape_and_device():
    m = ma.sliding_window(3, 1).materialize(7, 9, q_offset=2, device="cpu")
    assert m.shape == (1, 1, 7, 9) and m.dtype == torch.bool and m.device.type == "cpu"


def test_reprs():
    assert repr(ma.causal()) == "causal()"
    assert repr(ma.full()) == "full()"
    assert repr(ma.sliding_window(5)) == "sliding_window(5)"
    assert repr(ma.sliding_window(5, 2)) == "sliding_window(5, 2)"
    assert repr(ma.causal() & ma.sliding_window(1023)) == "causal() & sliding_window(1023)"


def test_window_accepts_integer_scalars():
    assert repr(ma.sliding_window(torch.tensor(4))) == "sliding_window(4)"


@pytest.mark.parametrize("args,name", [((-1,), "left"), ((3, -1), "right"), ((-5, -5), "left")])
def test_negative_window_raises(args, name):
    with pytest.raises(ValueError, match=name):
        ma.sliding_window(*args)


@pytest.mark.parametrize("args,name", [((1.5,), "left"), (("3",), "left"), ((True,), "left"), ((None,), "left"),
                                       ((3, 2.0), "right"), ((torch.tensor(2.0),), "left")])
def test_non_int_window_raises(args, name):
    with pytest.raises(TypeError, match=name):
        ma.sliding_window(*args)


@settings(max_examples=150, deadline=None)
@given(left=st.one_of(st.none(), st.integers(0, 45)), right=st.one_of(st.none(), st.integers(0, 45)),
       q_len=st.integers(1, 12), kv_len=st.integers(1, 40), q_offset=st.integers(-45, 60),
       combine=st.sampled_from(["alone", "and causal", "or causal", "named", "and dilated", "not"]))
def test_every_pair_is_exact_for_bands_and_sound_for_the_rest(left, right, q_len, kv_len, q_offset, combine):
    # Mask._every_pair (the no-map decode's test): never True unless materialize() is all True;
    # exact for bands, full() and their &; an | is True when one side is (e.g. causal | j >= i
    # allows every pair, but neither side does: False, safe)
    from maskattn.masks.band import Band
    from maskattn.masks.base import Named
    band = Band(left, right, "band")
    mask = {"alone": band, "and causal": band & ma.causal(), "or causal": band | ma.causal(),
            "named": Named(band, "named"), "and dilated": band & ma.sliding_window(60, 60, dilation=2),
            "not": ~band}[combine]
    every = bool(mask.materialize(q_len, kv_len, q_offset=q_offset).all())
    got = mask._every_pair(q_len, kv_len, q_offset)
    assert got is every or (not got and combine in ("or causal", "and dilated", "not"))
    assert ma.full()._every_pair(q_len, kv_len, q_offset)


@settings(max_examples=150, deadline=None)
@given(left=st.one_of(st.none(), st.integers(0, 45)), right=st.one_of(st.none(), st.integers(-3, 45)),
       q_len=st.integers(1, 12), kv_len=st.integers(1, 40), q_offset=st.integers(-45, 60),
       combine=st.sampled_from(["alone", "and causal", "or causal", "and full", "named", "and dilated", "not"]))
def test_causal_end_is_sound_and_exact_for_bands(left, right, q_len, kv_len, q_offset, combine):
    # Mask._causal_end (the no-map decode of several rows): when it gives E, row r is allowed
    # exactly the keys [0, E - (q_len - 1) + r), E <= kv_len; for a band alone it gives E whenever
    # that holds with the last row's end inside the keys and q_offset >= 0
    from maskattn.masks.band import Band
    from maskattn.masks.base import Named
    band = Band(left, right, "band")
    mask = {"alone": band, "and causal": band & ma.causal(), "or causal": band | ma.causal(),
            "and full": band & ma.full(), "named": Named(band, "named"),
            "and dilated": band & ma.sliding_window(60, 60, dilation=2), "not": ~band}[combine]
    allowed = mask.materialize(q_len, kv_len, q_offset=q_offset)[0, 0]
    rows, keys = torch.arange(q_len)[:, None], torch.arange(kv_len)[None, :]
    got = mask._causal_end(q_len, kv_len, q_offset)
    if got is not None:
        assert isinstance(got, int) and got <= kv_len
        assert torch.equal(allowed, keys < got - (q_len - 1) + rows)
    if combine == "alone" and right is not None and right >= 0 and q_offset >= 0:
        end = q_offset + q_len + right
        if end <= kv_len and torch.equal(allowed, keys < end - (q_len - 1) + rows):
            assert got == end
