"""Hardening: extreme windows and offsets, argument validation, dense snapshots, pickling,
very deep compositions, device errors. Attention-level cases run on every path."""
import copy
import functools
import operator
import pickle
import sys

import numpy as np
import pytest
import torch

import maskattn as ma
from attention_checks import check_forward, rand_qkv
from helpers import random_parents


def _same_map(a: ma.BlockMap, b: ma.BlockMap) -> bool:
    return all(torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y
               for x, y in ((getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__) if not isinstance(x, str))


# ---- int64 limits --------------------------------------------------------------------------------
def test_huge_windows_are_unbounded():
    j_ge_i = torch.ones(9, 9, dtype=torch.bool).triu()
    assert torch.equal(ma.sliding_window(0, sys.maxsize).materialize(9, 9)[0, 0], j_ge_i)
    assert torch.equal(ma.sliding_window(sys.maxsize).materialize(9, 9), ma.causal().materialize(9, 9))
    assert bool(ma.longformer(sys.maxsize, []).materialize(9, 9).all())
    assert bool(ma.sliding_window(2**100, 2**100).materialize(5, 5).all())
    for huge, plain in [(ma.sliding_window(sys.maxsize), ma.causal()), (ma.longformer(sys.maxsize, []), ma.full()),
                        (ma.sliding_window(0, sys.maxsize), ~ma.causal() | ma.sliding_window(0))]:
        assert _same_map(ma.compile_mask(huge, 70, 90, block_q=16, block_k=32),
                         ma.compile_mask(plain, 70, 90, block_q=16, block_k=32))


@pytest.mark.parametrize("q_offset", [2**62 - 1, -(2**62 - 1)])
def test_extreme_offsets_compile_and_run(path_device, q_offset):
    q, k, v = rand_qkv(1, 2, 1, 20, 40, 16, torch.float32, path_device)
    for mask in (ma.sliding_window(sys.maxsize, sys.maxsize), ma.causal(), ma.sliding_window(5, 5),
                 ma.longformer(sys.maxsize, [3]), ma.prefix_lm(7)):
        allowed = mask.materialize(20, 40, q_offset=q_offset)
        j = torch.arange(40)
        expected = {"causal()": j <= q_offset, "sliding_window(5, 5)": torch.zeros(40, dtype=torch.bool),
                    "prefix_lm(7)": (j < 7) | (j <= q_offset)}.get(repr(mask), torch.ones(40, dtype=torch.bool))
        assert torch.equal(allowed[0, 0], expected.expand(20, 40)), mask
        out, lse = ma.attention(q, k, v, mask.to(path_device), q_offset=q_offset, return_lse=True)
        check_forward(q, k, v, mask, out=out, lse=lse, q_offset=q_offset)


@pytest.mark.parametrize("q_offset", [2**63 - 20, 2**62, -(2**62), -(2**63)])
def test_out_of_range_offsets_are_rejected(q_offset):
    q, k, v = rand_qkv(1, 2, 1, 4, 4, 16, torch.float32)
    for call in (lambda: ma.compile_mask(ma.causal(), 4, 4, q_offset=q_offset),
                 lambda: ma.causal().materialize(4, 4, q_offset=q_offset),
                 lambda: ma.attention(q, k, v, ma.causal(), q_offset=q_offset)):
        with pytest.raises(ValueError, match="q_offset"):
            call()


# ---- q_offset types --------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [torch.tensor(2.7), torch.tensor([2.0]), 2.0, True, torch.tensor(True), "2",
                                 np.float64(2.0), np.bool_(True), torch.tensor([1.0, 2.0])])
def test_non_integer_q_offsets_are_rejected(bad):
    q, k, v = rand_qkv(1, 2, 1, 4, 8, 16, torch.float32)
    with pytest.raises(TypeError, match="q_offset"):
        ma.compile_mask(ma.causal(), 4, 8, q_offset=bad)
    with pytest.raises(TypeError, match="q_offset"):
        ma.attention(q, k, v, ma.causal(), q_offset=bad)


def test_q_offset_tensor_of_wrong_shape_is_rejected():
    # (B,) integer tensors are per-batch offsets (tests/test_q_offset_tensor.py); other shapes are not
    with pytest.raises(ValueError, match="q_offset"):
        ma.compile_mask(ma.causal(), 4, 8, q_offset=torch.tensor([[1, 2]]))


@pytest.mark.parametrize("good", [np.int64(3), np.int32(3), torch.tensor(3), torch.tensor([3], dtype=torch.int32)])
def test_integer_q_offsets_are_accepted(good):
    assert ma.compile_mask(ma.causal(), 4, 8, q_offset=good).q_offset == 3
    assert torch.equal(ma.causal().materialize(4, 8, q_offset=good), ma.causal().materialize(4, 8, q_offset=3))


# ---- scale and softcap ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name,value", [("scale", float("inf")), ("scale", float("nan")), ("scale", -float("inf")),
                                        ("softcap", float("inf")), ("softcap", float("nan")), ("softcap", 0.0)])
def test_non_finite_scale_or_softcap_is_rejected(monkeypatch, name, value):
    import maskattn.api as api
    monkeypatch.setattr(api, "masked_attention", lambda *a: pytest.fail("a kernel ran"))
    q, k, v = rand_qkv(1, 2, 1, 8, 8, 16, torch.float32)
    with pytest.raises(ValueError, match=name):
        ma.attention(q, k, v, ma.causal(), **{name: value})


def test_zero_and_negative_scale(path_device):
    # scale 0: uniform weights over the allowed keys; a negative scale is a valid (if odd) choice
    q, k, v = rand_qkv(1, 2, 1, 24, 24, 16, torch.float32, path_device)
    out = ma.attention(q, k, v, ma.causal(), scale=0.0)
    causal = ma.causal().materialize(24, 24).to(path_device)[0, 0].float()
    torch.testing.assert_close(out, ((causal / causal.sum(1, keepdim=True)) @ v).expand_as(out), rtol=0, atol=1e-5)
    out, lse = ma.attention(q, k, v, ma.causal(), scale=-0.2, return_lse=True)
    check_forward(q, k, v, ma.causal(), out=out, lse=lse, scale=-0.2)


# ---- dense snapshot ---------------------------------------------------------------------------------
def test_dense_takes_a_snapshot(path_device):
    t = torch.rand(20, 20, generator=torch.Generator().manual_seed(0)) > 0.5
    t[:, 0] = True
    mask = ma.dense(t.to(path_device)) if path_device != "cpu" else ma.dense(t)
    before = mask.materialize(20, 20).clone()
    q, k, v = rand_qkv(1, 2, 1, 20, 20, 16, torch.float32, path_device)
    first = ma.attention(q, k, v, mask)
    t.fill_(True)  # edit the user's tensor in place after the first call
    assert torch.equal(mask.materialize(20, 20), before)
    assert torch.equal(ma.attention(q, k, v, mask), first)
    assert torch.equal(ma.attention(q, k, v, ma.dense(t.to(path_device))), ma.attention(q, k, v))  # sees the edit


# ---- pickling -------------------------------------------------------------------------------------------
def _families():
    g = torch.Generator().manual_seed(0)
    return [ma.causal(), ma.sliding_window(3, 2), ma.longformer(2, [0, 5]),
            ma.longformer(2, torch.rand(2, 24, generator=g) > 0.8), ma.documents([5, 19]),
            ma.documents(doc_ids=torch.randint(0, 3, (2, 24), generator=g), causal=False),
            ma.tree([-1, 0, 0, 1], prefix=20), ma.tree(random_parents(24, 0, "chain")), ma.prefix_lm(4),
            ma.prefix_lm(torch.tensor([3, 7])), ma.padding(torch.rand(2, 24, generator=g) > 0.2),
            ma.dense(torch.rand(2, 3, 24, 24, generator=g) > 0.5), ma.full(),
            (ma.causal() | ~ma.sliding_window(4)) & ma.documents([10, 14])]


@pytest.mark.parametrize("mask", _families(), ids=repr)
def test_masks_pickle_without_their_cache(mask):
    q, k, v = rand_qkv(2, 3, 1, 24, 24, 16, torch.float32, requires_grad=True)
    ma.attention(q, k, v, mask)  # fills the per-object cache of compiled maps (with autograd, full() too)
    assert mask.__dict__.get("_maskattn_cache")
    data = pickle.dumps(mask)
    back = pickle.loads(data)
    assert "_maskattn_cache" not in back.__dict__ and "_maskattn_cache" not in copy.deepcopy(mask).__dict__
    assert repr(back) == repr(mask)
    assert torch.equal(back.materialize(24, 24), mask.materialize(24, 24))
    assert _same_map(ma.compile_mask(back, 24, 24, block_q=16, block_k=32),
                     ma.compile_mask(mask, 24, 24, block_q=16, block_k=32))
    assert len(data) < len(pickle.dumps(mask.__dict__["_maskattn_cache"])) + len(data)  # the cache is not in it


def test_block_map_pickles():
    bm = ma.compile_mask(ma.tree(random_parents(70, 1, "chain")) | ma.sliding_window(3), 70, 70, block_q=16,
                         block_k=32)
    back = pickle.loads(pickle.dumps(bm))
    assert _same_map(back, bm) and back.mask_repr == bm.mask_repr and repr(back) == repr(bm)


# ---- deep compositions ---------------------------------------------------------------------------------
def test_thousand_operators_compile_and_repr(path_device):
    wide = functools.reduce(operator.or_, [ma.sliding_window(i) for i in range(1000)])
    assert len(repr(wide)) <= 2000 and repr(wide).startswith("sliding_window(0) | sliding_window(1)")
    assert wide.batch_size == 1 and wide.num_heads == 1 and wide.device is None
    assert _same_map(ma.compile_mask(wide, 70, 70, block_q=16, block_k=32),
                     ma.compile_mask(ma.sliding_window(999), 70, 70, block_q=16, block_k=32))
    # a right-nested chain of & with tensor leaves, and a chain of ~
    valid = torch.rand(2, 60, generator=torch.Generator().manual_seed(0)) > 0.2
    chain = ma.causal()
    for i in range(1000):
        chain = ma.sliding_window(2000 - i) & (chain if i % 2 else ma.padding(valid) & chain)
    assert chain.batch_size == 2 and chain.device == torch.device("cpu")
    moved = chain.to(path_device)
    assert moved.device == torch.device(path_device) if path_device == "cpu" else moved.device.type == "cuda"
    flat = ma.padding(valid) & ma.sliding_window(1001)
    assert torch.equal(chain.materialize(60, 60), flat.materialize(60, 60))
    nots = ma.causal()
    for _ in range(1001):
        nots = ~nots
    assert torch.equal(nots.materialize(30, 30), (~ma.causal()).materialize(30, 30))
    q, k, v = rand_qkv(2, 2, 1, 60, 60, 16, torch.float32, path_device)
    assert torch.equal(ma.attention(q, k, v, moved), ma.attention(q, k, v, flat.to(path_device)))
    with pytest.raises(ValueError, match="kv_len"):  # length checks reach the deepest leaf
        ma.compile_mask(chain, 60, 61)


def test_deep_batch_mismatch_is_reported():
    chain = ma.padding(torch.ones(2, 8, dtype=torch.bool))
    for i in range(1000):
        chain = chain | ma.sliding_window(i)
    with pytest.raises(ValueError, match="batch size"):
        chain & ma.padding(torch.ones(3, 8, dtype=torch.bool))


# ---- devices --------------------------------------------------------------------------------------------
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="device.*CUDA is not available"):
        ma.compile_mask(ma.causal(), 8, 8, device="cuda")
    with pytest.raises(ValueError, match="device.*CUDA is not available"):
        ma.padding(torch.ones(1, 8, dtype=torch.bool)).to("cuda")


def test_bad_devices_are_clear_errors():
    with pytest.raises(ValueError, match="device"):
        ma.compile_mask(ma.causal(), 8, 8, device="nonsense")
    with pytest.raises(ValueError, match="device.*meta"):
        ma.compile_mask(ma.causal(), 8, 8, device="meta")
