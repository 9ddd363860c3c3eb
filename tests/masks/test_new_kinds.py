"""The mask constructs of round 2: dilated windows, query_mask, per_head / per_batch,
block_sparse, from_function, neighborhood. Each against a written-out loop definition,
its compiled map against the format's invariants, and attention on both CPU paths."""
import math
import pickle

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import maskattn as ma
from attention_checks import check_forward, rand_qkv
from helpers import check_block_map, loop_mask
from maskattn.kernels import torch_blocksparse


def natten_rule(shape, kernel, causal):
    strides = [math.prod(shape[a + 1:]) for a in range(len(shape))]
    size = math.prod(shape)

    def rule(b, h, i, j):
        if not (0 <= i < size and 0 <= j < size):
            return False
        for a, (n, k, s) in enumerate(zip(shape, kernel, strides)):
            ci, cj = (i // s) % n, (j // s) % n
            start = min(max(ci - k // 2, 0), n - k)
            if not start <= cj < start + k:
                return False
            if a == 0 and causal and cj > ci:
                return False
        return True
    return rule


def chunked(b, h, i, j):  # a module-level rule (picklable): attention within chunks of 32
    return (i // 32 == j // 32) & (j <= i)


@st.composite
def new_masks(draw, lq, lk, batch, heads):
    """(mask, rule(b, h, i, j)) pairs of every new construct, sized for (lq, lk)."""
    kind = draw(st.sampled_from(["dilated", "query", "per_head", "per_batch", "block", "function", "neighborhood"]))
    if kind == "dilated":
        left, right, dil = draw(st.integers(0, 40)), draw(st.integers(0, 10)), draw(st.integers(1, 5))
        return ma.sliding_window(left, right, dilation=dil), lambda b, h, i, j: i - left <= j <= i + right and (i - j) % dil == 0
    if kind == "query":
        valid = torch.rand(batch, lk, generator=torch.Generator().manual_seed(draw(st.integers(0, 99)))) > 0.3
        return ma.query_mask(valid) & ma.causal(), lambda b, h, i, j: (bool(valid[b, i]) if 0 <= i < lk else False) and j <= i
    if kind in ("per_head", "per_batch"):
        pool = [ma.causal(), ma.sliding_window(7), ma.full()]
        rules = [lambda b, h, i, j: j <= i, lambda b, h, i, j: i - 7 <= j <= i, lambda b, h, i, j: True]
        n = heads if kind == "per_head" else batch
        pick = [draw(st.integers(0, 2)) for _ in range(n)]
        mask = (ma.per_head if kind == "per_head" else ma.per_batch)([pool[p] for p in pick])
        return mask, (lambda b, h, i, j: rules[pick[h]](b, h, i, j)) if kind == "per_head" else \
            (lambda b, h, i, j: rules[pick[b]](b, h, i, j))
    if kind == "block":
        bq, bk = draw(st.integers(3, 40)), draw(st.integers(3, 40))
        nq, nk = draw(st.integers(1, 12)), draw(st.integers(1, 12))
        lay = torch.rand(nq, nk, generator=torch.Generator().manual_seed(draw(st.integers(0, 99)))) > 0.5
        return ma.block_sparse(lay, bq, bk), lambda b, h, i, j: (0 <= i < nq * bq and 0 <= j < nk * bk
                                                                  and bool(lay[i // bq, j // bk]))
    if kind == "function":
        return ma.from_function(chunked), lambda b, h, i, j: i // 32 == j // 32 and j <= i
    dims = draw(st.sampled_from([(lk,), (2, lk // 2) if lk % 2 == 0 else (lk,), (3, lk // 3) if lk % 3 == 0 else (lk,)]))
    kernel = tuple(draw(st.sampled_from([k for k in (1, 3, 5, 7) if k <= n])) for n in dims)
    causal = draw(st.booleans())
    return ma.neighborhood(dims, kernel, causal=causal), natten_rule(dims, kernel, causal)


@settings(max_examples=60)
@given(st.data())
def test_new_masks_materialize_and_compile_exactly(data):
    lk = data.draw(st.integers(1, 120))
    lq = data.draw(st.integers(1, lk))
    batch, heads = data.draw(st.sampled_from([1, 2])), data.draw(st.sampled_from([1, 3]))
    mask, rule = data.draw(new_masks(lq, lk, batch, heads))
    off = data.draw(st.integers(-5, lk - lq + 5)) if data.draw(st.booleans()) else None
    mat = mask.materialize(lq, lk, q_offset=off)
    nb, nh = mat.shape[0], mat.shape[1]
    assert torch.equal(mat, loop_mask(rule, lq, lk, q_offset=off, batch=nb, heads=nh))
    bq, bk = data.draw(st.sampled_from([(16, 32), (32, 32), (64, 64), (128, 128)]))
    check_block_map(ma.compile_mask(mask, lq, lk, q_offset=off, block_q=bq, block_k=bk), mat)
    # compositions with the old families keep both behaviours
    combo = mask & ma.causal() | ma.sliding_window(2)
    check_block_map(ma.compile_mask(combo, lq, lk, q_offset=off, block_q=bq, block_k=bk),
                    combo.materialize(lq, lk, q_offset=off))


@pytest.mark.parametrize("path", ["interpreter", "torch"])
@pytest.mark.parametrize("which", range(6))
def test_new_masks_attention_matches_reference(path, which):
    b, hq, hkv, lq, lk = 2, 4, 2, 70, 96
    masks = [ma.sliding_window(30, 3, dilation=3), ma.query_mask(torch.arange(lk) % 5 != 0) & ma.causal(),
             ma.per_head([ma.causal(), ma.sliding_window(9), ma.causal(), ma.full()]),
             ma.per_batch([ma.causal(), ma.documents([50, 46])]),
             ma.block_sparse(torch.rand(4, 5, generator=torch.Generator().manual_seed(0)) > 0.4, 20, 24),
             ma.neighborhood((8, 12), (3, 5), causal=True)]
    mask = masks[which]
    q, k, v = rand_qkv(b, hq, hkv, lq, lk, 32, torch.float16)
    if path == "interpreter":
        out, lse = ma.attention(q, k, v, mask, return_lse=True)
    else:
        bm = ma.compile_mask(mask, lq, lk, block_q=32, block_k=32)
        out, lse = torch_blocksparse.blocksparse_attention(q, k, v, bm, 32 ** -0.5, None)
    check_forward(q, k, v, mask, out=out, lse=lse)


def test_per_head_compiles_each_distinct_mask_once(monkeypatch):
    calls = []
    causal = ma.causal()
    real = type(causal)._tile_classes
    monkeypatch.setattr(type(causal), "_tile_classes", lambda self, g: calls.append(self) or real(self, g))
    ma.compile_mask(ma.per_head([causal] * 16), 300, 300)  # several query tiles: the general compiler
    assert len(calls) == 1


def test_wrong_list_lengths_and_bad_parameters_raise():
    q, k, v = rand_qkv(2, 4, 2, 16, 16, 16, torch.float32)
    with pytest.raises(ValueError, match="heads"):
        ma.attention(q, k, v, ma.per_head([ma.causal()] * 3))
    with pytest.raises(ValueError, match="batch"):
        ma.attention(q, k, v, ma.per_batch([ma.causal()] * 3))
    with pytest.raises(TypeError, match="masks"):
        ma.per_head(ma.causal())
    with pytest.raises(ValueError, match="masks"):
        ma.per_head([])
    with pytest.raises(ValueError, match="dilation"):
        ma.sliding_window(5, dilation=0)
    with pytest.raises(ValueError, match="kernel"):
        ma.neighborhood((4, 4), 2)
    with pytest.raises(ValueError, match="larger"):
        ma.neighborhood((4, 4), 5)
    with pytest.raises(ValueError, match="kv_len"):
        ma.compile_mask(ma.neighborhood((4, 4), 3), 16, 17)
    with pytest.raises(ValueError, match="block_q"):
        ma.block_sparse(torch.ones(2, 2, dtype=torch.bool), 0, 4)
    with pytest.raises(TypeError, match="bool"):
        ma.compile_mask(ma.from_function(lambda b, h, i, j: i - j), 20, 20)
    with pytest.raises(ValueError, match="valid"):
        ma.compile_mask(ma.query_mask(torch.ones(10, dtype=torch.bool)), 8, 12)


def test_new_masks_pickle():
    for m in (ma.sliding_window(9, dilation=2), ma.query_mask(torch.arange(20) > 3), ma.neighborhood((4, 5), 3),
              ma.per_head([ma.causal(), ma.full()]), ma.block_sparse(torch.eye(4, dtype=torch.bool), 5, 5),
              ma.from_function(chunked)):
        back = pickle.loads(pickle.dumps(m))
        assert repr(back) == repr(m)
        assert torch.equal(back.materialize(20, 20), m.materialize(20, 20))
