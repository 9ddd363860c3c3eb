"""The mask algebra (&, |, ~): element-wise meaning, Boolean laws, reprs, compatibility checks."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import maskattn as ma
from helpers import Ctx, assert_maps_equal, check_block_map, composed_masks, contexts, q_offsets


@st.composite
def two_masks(draw, depth=2):
    ctx = draw(contexts(max_len=70))
    return (draw(composed_masks(ctx, depth)), draw(composed_masks(ctx, depth)), ctx, draw(q_offsets(ctx)))


def _mat(mask, ctx: Ctx, q_offset):
    return mask.materialize(ctx.q_len, ctx.kv_len, q_offset=q_offset)


def _same(x, y):
    """Equal after broadcasting the (B|1, H|1) leading dims."""
    shape = torch.broadcast_shapes(x.shape, y.shape)
    return torch.equal(x.expand(shape), y.expand(shape))


@settings(max_examples=40, deadline=None)
@given(abq=two_masks())
def test_operators_are_element_wise(abq):
    a, b, ctx, off = abq
    ma_, mb = _mat(a, ctx, off), _mat(b, ctx, off)
    assert _same(_mat(a & b, ctx, off), ma_ & mb)
    assert _same(_mat(a | b, ctx, off), ma_ | mb)
    assert torch.equal(_mat(~a, ctx, off), ~ma_)


@settings(max_examples=40, deadline=None)
@given(abq=two_masks())
def test_boolean_laws(abq):
    a, b, ctx, off = abq
    m = _mat(a, ctx, off)
    assert torch.equal(_mat(~~a, ctx, off), m)
    assert torch.equal(_mat(~(a & b), ctx, off), _mat(~a | ~b, ctx, off))
    assert torch.equal(_mat(~(a | b), ctx, off), _mat(~a & ~b, ctx, off))
    assert torch.equal(_mat(a & ma.full(), ctx, off), m)
    assert torch.equal(_mat(a | ~ma.full(), ctx, off), m)
    assert not bool(_mat(a & ~a, ctx, off).any())
    assert bool(_mat(a | ~a, ctx, off).all())
    assert torch.equal(_mat(a & b, ctx, off), _mat(b & a, ctx, off))


@settings(max_examples=30, deadline=None)
@given(abq=two_masks(), bq=st.sampled_from([16, 32]), bk=st.sampled_from([32, 64]))
def test_double_negation_compiles_to_the_same_map(abq, bq, bk):
    a, b, ctx, off = abq
    kw = dict(q_offset=off, block_q=bq, block_k=bk)
    x = ma.compile_mask(a, ctx.q_len, ctx.kv_len, **kw)
    y = ma.compile_mask(~~a, ctx.q_len, ctx.kv_len, **kw)
    assert_maps_equal(x, y)
    # De Morgan also holds at the tile level
    z1 = ma.compile_mask(~(a & b), ctx.q_len, ctx.kv_len, **kw)
    z2 = ma.compile_mask(~a | ~b, ctx.q_len, ctx.kv_len, **kw)
    assert_maps_equal(z1, z2)
    check_block_map(z1, _mat(~(a & b), ctx, off))


def test_reprs_place_parentheses_by_precedence():
    c, w, f = ma.causal(), ma.sliding_window(1023), ma.full()
    assert repr(c & w) == "causal() & sliding_window(1023)"
    assert repr(c | w) == "causal() | sliding_window(1023)"
    assert repr(~c) == "~causal()"
    assert repr(~~c) == "~~causal()"
    assert repr(~(c & w)) == "~(causal() & sliding_window(1023))"
    assert repr((c | w) & f) == "(causal() | sliding_window(1023)) & full()"
    assert repr(c & w | f) == "causal() & sliding_window(1023) | full()"
    assert repr(c & (w & f)) == "causal() & sliding_window(1023) & full()"
    assert repr(ma.documents([3, 4]) & ~ma.causal()) == "documents(lengths=[3, 4]) & ~causal()"


@pytest.mark.parametrize("other", [True, 1, None, torch.ones(3, 3, dtype=torch.bool)])
def test_operators_reject_non_masks(other):
    with pytest.raises(TypeError, match="Mask"):
        ma.causal() & other
    with pytest.raises(TypeError, match="Mask"):
        ma.causal() | other


def test_batch_and_head_counts_must_agree():
    docs = ma.documents(torch.tensor([[2, 4], [6, 0]]))
    with pytest.raises(ValueError, match="batch size"):
        docs & ma.padding(torch.ones(3, 6, dtype=torch.bool))
    with pytest.raises(ValueError, match="batch size"):
        docs | ma.prefix_lm(torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="head count"):
        ma.dense(torch.ones(1, 2, 6, 6, dtype=torch.bool)) & ma.dense(torch.ones(1, 3, 6, 6, dtype=torch.bool))
    # batch size 1 broadcasts against any B
    m = docs & ma.padding(torch.ones(1, 6, dtype=torch.bool)) & ma.causal()
    assert m.batch_size == 2 and m.materialize(6, 6).shape == (2, 1, 6, 6)
