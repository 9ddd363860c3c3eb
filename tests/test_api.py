"""maskattn.attention: bad input is refused before any kernel launch, with a message
naming the argument, what was expected and what was received."""
import pytest
import torch

import maskattn as ma


def qkv(b=1, hq=2, hkv=1, lq=8, lk=8, d=16, dtype=torch.float16, device="cpu"):
    return (torch.randn(b, hq, lq, d, device=device).to(dtype), torch.randn(b, hkv, lk, d, device=device).to(dtype),
            torch.randn(b, hkv, lk, d, device=device).to(dtype))


@pytest.mark.parametrize("make,exc,words", [
    (lambda q, k, v: (q[0], k, v), ValueError, ["q", "4 dims"]),
    (lambda q, k, v: (q, k[0], v), ValueError, ["k", "4 dims"]),
    (lambda q, k, v: (q.double(), k.double(), v.double()), TypeError, ["q", "float64"]),
    (lambda q, k, v: (q.int(), k, v), TypeError, ["q", "int32"]),
    (lambda q, k, v: (q, k.float(), v), TypeError, ["dtype"]),
    (lambda q, k, v: (q, k, torch.empty(v.shape, dtype=v.dtype, device="meta")), ValueError, ["device", "meta"]),
    (lambda q, k, v: (q.repeat(1, 2, 1, 1)[:, :3], k.repeat(1, 2, 1, 1), v.repeat(1, 2, 1, 1)), ValueError,
     ["multiple", "3", "2"]),
    (lambda q, k, v: (q[..., :8], k[..., :8], v[..., :8]), ValueError, ["head dim", "8"]),
    (lambda q, k, v: (torch.randn(1, 2, 8, 512).half(), torch.randn(1, 1, 8, 512).half(),
                      torch.randn(1, 1, 8, 512).half()), ValueError, ["head dim", "512"]),
    (lambda q, k, v: (q, torch.randn(1, 1, 8, 32).half(), torch.randn(1, 1, 8, 32).half()), ValueError,
     ["head dim", "16", "32"]),
    (lambda q, k, v: (q, k, v[:, :, :4]), ValueError, ["k, v", "shape"]),
    (lambda q, k, v: (q, k.repeat(2, 1, 1, 1), v.repeat(2, 1, 1, 1)), ValueError, ["batch"]),
    (lambda q, k, v: ("q", k, v), TypeError, ["q", "str"]),
])
def test_bad_tensors(make, exc, words):
    with pytest.raises(exc) as e:
        ma.attention(*make(*qkv()))
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_block_map_for_other_lengths():
    q, k, v = qkv(lq=8, lk=8)
    bm = ma.compile_mask(ma.causal(), 8, 16)
    with pytest.raises(ValueError, match="kv_len=16"):
        ma.attention(q, k, v, bm)
    with pytest.raises(ValueError, match="q_offset"):
        ma.attention(q, k, v, ma.compile_mask(ma.causal(), 8, 8), q_offset=3)


def test_mask_for_other_batch_or_heads():
    q, k, v = qkv(b=2, hq=2, hkv=1)
    with pytest.raises(ValueError, match="3 batch rows"):
        ma.attention(q, k, v, ma.padding(torch.ones(3, 8, dtype=torch.bool)))
    with pytest.raises(ValueError, match="3 heads"):
        ma.attention(q, k, v, ma.dense(torch.ones(2, 3, 8, 8, dtype=torch.bool)))


def test_mask_on_another_device():
    q, k, v = qkv()
    meta_mask = ma.padding(torch.ones(1, 8, dtype=torch.bool, device="meta"))
    with pytest.raises(ValueError, match="meta"):
        ma.attention(q, k, v, meta_mask)


def test_bad_mask_scale_softcap():
    q, k, v = qkv()
    with pytest.raises(TypeError, match="mask"):
        ma.attention(q, k, v, torch.ones(8, 8, dtype=torch.bool))
    with pytest.raises(TypeError, match="scale"):
        ma.attention(q, k, v, scale="0.1")
    with pytest.raises(ValueError, match="softcap"):
        ma.attention(q, k, v, softcap=-1.0)


def test_return_shapes_and_dtype():
    q, k, v = qkv(b=2, hq=4, hkv=2, lq=5, lk=9, dtype=torch.float32)
    out, lse = ma.attention(q, k, v, ma.causal(), return_lse=True)
    assert out.shape == (2, 4, 5, 16) and out.dtype == torch.float32
    assert lse.shape == (2, 4, 5) and lse.dtype == torch.float32
    assert ma.attention(q, k, v).shape == (2, 4, 5, 16)
