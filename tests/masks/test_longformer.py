"""longformer(window, global_tokens) against its written-out definition."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import maskattn as ma
from helpers import LENGTH_CASES, assert_materialize_matches, longformer_rule


@pytest.mark.parametrize("q_len,kv_len,q_offset", LENGTH_CASES)
@pytest.mark.parametrize("window", [0, 2, 7])
def test_list_of_globals_matches_definition(q_len, kv_len, q_offset, window):
    pos = [p for p in (0, 3, 3, kv_len - 1) if p < kv_len]  # duplicates allowed
    assert_materialize_matches(ma.longformer(window, pos), longformer_rule(window, [set(pos)]), q_len, kv_len, q_offset)


@pytest.mark.parametrize("q_len,kv_len,q_offset", LENGTH_CASES)
def test_tensor_and_bool_globals_match_definition(q_len, kv_len, q_offset):
    pos = torch.tensor([p for p in (1, kv_len // 2) if p < kv_len], dtype=torch.int32)
    rule = longformer_rule(2, [set(pos.tolist())])
    assert_materialize_matches(ma.longformer(2, pos), rule, q_len, kv_len, q_offset)
    flags = torch.zeros(kv_len, dtype=torch.bool)
    flags[pos.long()] = True
    assert_materialize_matches(ma.longformer(2, flags), rule, q_len, kv_len, q_offset)


@pytest.mark.parametrize("q_len,kv_len,q_offset", LENGTH_CASES)
def test_per_batch_globals_match_definition(q_len, kv_len, q_offset):
    flags = torch.rand(3, kv_len, generator=torch.Generator().manual_seed(kv_len)) < 0.15
    flags[2] = False  # a batch row without global tokens
    sets = [set(torch.nonzero(f).flatten().tolist()) for f in flags]
    assert_materialize_matches(ma.longformer(1, flags), longformer_rule(1, sets), q_len, kv_len, q_offset, batch=3)


def test_no_global_tokens_is_a_symmetric_band():
    want = ma.sliding_window(3, 3).materialize(20, 20)
    assert torch.equal(ma.longformer(3, []).materialize(20, 20), want)
    assert torch.equal(ma.longformer(3, torch.zeros(20, dtype=torch.bool)).materialize(20, 20), want)


def test_global_tokens_are_symmetric():
    m = ma.longformer(0, [4]).materialize(10, 10)[0, 0]
    assert bool(m[4].all()) and bool(m[:, 4].all())
    assert int(m.sum()) == 10 + 10 + 10 - 1 - 1  # diagonal + row 4 + column 4, overlaps counted once


@settings(max_examples=30, deadline=None)
@given(window=st.integers(0, 12), q_len=st.integers(1, 35), kv_len=st.integers(1, 35), batch=st.integers(1, 3),
       q_offset=st.one_of(st.none(), st.integers(-40, 40)), seed=st.integers(0, 10**6))
def test_longformer_random(window, q_len, kv_len, batch, q_offset, seed):
    flags = torch.rand(batch, kv_len, generator=torch.Generator().manual_seed(seed)) < 0.1
    sets = [set(torch.nonzero(f).flatten().tolist()) for f in flags]
    assert_materialize_matches(ma.longformer(window, flags), longformer_rule(window, sets), q_len, kv_len,
                               q_offset, batch=batch)


def test_repr():
    assert repr(ma.longformer(256, [0, 1, 2])) == "longformer(256, [0, 1, 2])"
    assert repr(ma.longformer(4, torch.zeros(2, 9, dtype=torch.bool))) == "longformer(4, <bool (2, 9)>)"
    assert repr(ma.longformer(4, list(range(64)))) == "longformer(4, <64 positions>)"


@pytest.mark.parametrize("window", [-1, -100])
def test_negative_window_raises(window):
    with pytest.raises(ValueError, match="window"):
        ma.longformer(window, [0])


@pytest.mark.parametrize("window", [1.0, "2", None, True])
def test_non_int_window_raises(window):
    with pytest.raises(TypeError, match="window"):
        ma.longformer(window, [0])


def test_negative_global_position_raises():
    with pytest.raises(ValueError, match="global_tokens"):
        ma.longformer(2, [0, -1])


@pytest.mark.parametrize("bad", [[0.5, 1.0], torch.tensor([1.0]), torch.zeros(2, 3, dtype=torch.int64)])
def test_bad_global_tokens_type_or_shape_raises(bad):
    with pytest.raises((TypeError, ValueError), match="global_tokens"):
        ma.longformer(2, bad)


def test_global_position_out_of_range_raises_at_compile():
    mask = ma.longformer(2, [0, 40])
    with pytest.raises(ValueError, match="global_tokens"):
        ma.compile_mask(mask, 40, 40, block_q=16, block_k=32)
    with pytest.raises(ValueError, match="global_tokens"):
        mask.materialize(40, 40)
    ma.compile_mask(mask, 41, 41, block_q=16, block_k=32)  # in range: fine


def test_global_flags_of_wrong_length_raise_at_compile():
    mask = ma.longformer(2, torch.zeros(2, 30, dtype=torch.bool))
    with pytest.raises(ValueError, match="global_tokens"):
        ma.compile_mask(mask, 32, 32, block_q=16, block_k=32)
