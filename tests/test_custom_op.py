"""The attention custom ops (maskattn/kernels/op.py): torch.compile without graph breaks,
fake tensors and meta, vmap, the deterministic flag, once-differentiable backward, autocast.
Every test runs on each path (Triton interpreter, block-sparse torch path; CUDA GPU-marked)."""
import dataclasses

import pytest
import torch

import maskattn as ma
from attention_checks import rand_qkv
from maskattn.kernels import op

MASK = ma.sliding_window(20) & ma.causal() | ma.longformer(0, [3])


def _inputs(device, b=1, hq=4, hkv=2, lq=70, lk=70, d=32, dtype=torch.float32):
    return tuple(t.requires_grad_(True) for t in rand_qkv(b, hq, hkv, lq, lk, d, dtype, device))


def _loss(q, k, v, mask, **kw):
    out, lse = ma.attention(q, k, v, mask, return_lse=True, **kw)
    return out, lse, (out * out).sum() + torch.where(torch.isfinite(lse), lse, 0).sum()


def test_fullgraph_compile_matches_eager(path_device):
    # inductor (the default backend), forward and backward, with a precompiled map
    torch._dynamo.reset()
    q, k, v = _inputs(path_device, hq=2, hkv=1, lq=40, lk=40, d=16)
    bm = ma.compile_mask(MASK, 40, 40, block_q=32, block_k=32, device=path_device)
    out, lse, loss = torch.compile(_loss, fullgraph=True)(q, k, v, bm)
    grads = torch.autograd.grad(loss, (q, k, v))
    ref_out, ref_lse, ref_loss = _loss(q, k, v, bm)
    ref_grads = torch.autograd.grad(ref_loss, (q, k, v))
    torch.testing.assert_close(out, ref_out, rtol=0, atol=0)
    torch.testing.assert_close(lse, ref_lse, rtol=0, atol=0)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-5)  # the loss's own backward may fuse differently


def test_fullgraph_aot_eager_gqa_offset_softcap(path_device, dtype=torch.bfloat16):
    # AOTAutograd with fake tensors (the custom op's fake implementations), no inductor codegen
    torch._dynamo.reset()
    q, k, v = _inputs(path_device, b=2, hq=3, hkv=1, lq=17, lk=45, d=16, dtype=dtype)
    valid = torch.rand(2, 45, generator=torch.Generator().manual_seed(0)) > 0.2
    bm = ma.compile_mask(ma.padding(valid.to(path_device)) & ma.causal(), 17, 45, q_offset=20, block_q=16,
                         block_k=32, device=path_device)

    def f(q, k, v):
        return _loss(q, k, v, bm, softcap=5.0, scale=0.3)

    out, lse, loss = torch.compile(f, fullgraph=True, backend="aot_eager")(q, k, v)
    grads = torch.autograd.grad(loss, (q, k, v))
    ref_out, ref_lse, ref_loss = f(q, k, v)
    ref_grads = torch.autograd.grad(ref_loss, (q, k, v))
    assert torch.equal(out, ref_out) and torch.equal(lse, ref_lse)
    assert all(torch.equal(g, r) for g, r in zip(grads, ref_grads))


def test_graph_breaks(path_device):
    # a BlockMap: none; a mask object: one (its compilation), none elsewhere
    torch._dynamo.reset()
    q, k, v = _inputs(path_device, hq=2, hkv=1, lq=20, lk=20, d=16)
    bm = ma.compile_mask(ma.causal(), 20, 20, device=path_device)

    def f(q, k, v, mask):
        return (ma.attention(q * 2, k, v, mask) + 1).sum()

    assert torch._dynamo.explain(f)(q, k, v, bm).graph_break_count == 0
    for mask in (ma.causal(), MASK.to(path_device), None):
        # dynamo counts a break once per enclosing frame (f, attention): count the reasons instead
        reasons = torch._dynamo.explain(f)(q, k, v, mask).break_reasons
        # the break is in the map compilation (named in the reason or in its stack, by torch version)
        assert len(reasons) == 1 and "mask_block_map" in str(reasons[0].reason) + str(reasons[0].user_stack)


def test_block_map_flattening_is_generic():
    bm = ma.compile_mask(MASK, 50, 70, block_q=16, block_k=32)
    tensors, ints, spec = op.flatten_block_map(bm)
    fields = dataclasses.fields(ma.BlockMap)
    assert len(tensors) == sum(isinstance(getattr(bm, f.name), torch.Tensor) for f in fields)
    back = op.unflatten_block_map(tensors, ints, spec)
    for f in fields:
        a, b = getattr(bm, f.name), getattr(back, f.name)
        if f.name == "mask_repr":  # display only: stays out of the op (inductor embeds string arguments)
            assert b == "" and "," not in spec.replace(",", "") and all(c.isalnum() or c in "_:," for c in spec)
            continue
        if f.name == "q_offset":  # the kernels never read it: kept out, so positions do not specialise a graph
            assert b == 0
            continue
        assert torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b, f.name
    # maps that differ only in q_offset (an int or a per-batch-row tensor) give the same op arguments
    for other in (dataclasses.replace(bm, q_offset=bm.q_offset + 7), dataclasses.replace(bm, q_offset=torch.tensor([20, 20]))):
        tensors2, ints2, spec2 = op.flatten_block_map(other)
        assert ints2 == ints and spec2 == spec and all(x is y for x, y in zip(tensors2, tensors))


@pytest.mark.parametrize("per_batch_map", [False, True])
def test_vmap(path_device, per_batch_map):
    torch._dynamo.reset()
    n, b = 2, 2
    qs, ks, vs = (torch.stack(t) for t in zip(*(rand_qkv(b, 2, 1, 20, 20, 16, torch.float32, path_device, seed=i)
                                               for i in range(n))))
    mask = ma.padding(torch.rand(b, 20, generator=torch.Generator().manual_seed(0)) > 0.3) if per_batch_map \
        else ma.causal()
    bm = ma.compile_mask(mask, 20, 20, block_q=16, block_k=32, device=path_device)

    def f(q, k, v):
        return ma.attention(q, k, v, bm)

    loop = torch.stack([f(qs[i], ks[i], vs[i]) for i in range(n)])
    torch.testing.assert_close(torch.func.vmap(f)(qs, ks, vs), loop)
    shared_q = torch.func.vmap(f, in_dims=(None, 0, 0))(qs[0], ks, vs)
    torch.testing.assert_close(shared_q, torch.stack([f(qs[0], ks[i], vs[i]) for i in range(n)]))
    # backward through a vmapped call
    qr = qs.clone().requires_grad_(True)
    torch.func.vmap(f)(qr, ks, vs).sum().backward()
    ql = qs.clone().requires_grad_(True)
    torch.stack([f(ql[i], ks[i], vs[i]) for i in range(n)]).sum().backward()
    torch.testing.assert_close(qr.grad, ql.grad)


def test_meta_tensors_give_shapes():
    q = torch.empty(2, 4, 70, 32, device="meta", requires_grad=True)
    k = torch.empty(2, 2, 90, 32, device="meta", requires_grad=True)
    v = torch.empty(2, 2, 90, 32, device="meta", requires_grad=True)
    out, lse = ma.attention(q, k, v, ma.causal() & ma.sliding_window(9), return_lse=True)
    assert out.shape == q.shape and out.device.type == "meta" and lse.shape == (2, 4, 70) and lse.dtype == torch.float32
    out.sum().backward()
    assert q.grad.shape == q.shape and k.grad.shape == k.shape and v.grad.device.type == "meta"
    bm = ma.compile_mask(ma.causal(), 70, 90).to("meta")
    assert ma.attention(q, k, v, bm).shape == q.shape
    with pytest.raises(ValueError, match="meta"):
        ma.attention(q, k, v, ma.padding(torch.ones(2, 90, dtype=torch.bool, device="meta")))


def test_deterministic_follows_torch_setting(path_device, monkeypatch):
    seen = []
    real_triton, real_torch = op.attention_backward, op.blocksparse_attention_backward
    monkeypatch.setattr(op, "attention_backward", lambda *a: seen.append(a[-1]) or real_triton(*a))
    monkeypatch.setattr(op, "blocksparse_attention_backward", lambda *a: seen.append("torch") or real_torch(*a))
    q, k, v = _inputs(path_device, hq=2, hkv=1, lq=20, lk=20, d=16)

    def grads(**kw):
        ma.attention(q, k, v, ma.causal(), **kw).sum().backward()

    grads()
    grads(deterministic=True)
    was = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        grads()
        grads(deterministic=False)
    finally:
        torch.use_deterministic_algorithms(was)
    expected = ["torch"] * 4 if path_device == "cpu" and not op._use_triton(q) else [False, True, True, False]
    assert seen == expected
    with pytest.raises(TypeError, match="deterministic"):
        ma.attention(q, k, v, deterministic="yes")


def test_double_backward_raises(path_device):
    q, k, v = _inputs(path_device, hq=2, hkv=1, lq=20, lk=20, d=16)
    out = ma.attention(q, k, v, ma.causal())
    dq, = torch.autograd.grad((out * out).sum(), q, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward"):
        dq.sum().backward()
    # create_graph=True alone (gradients not differentiated again) is fine
    out = ma.attention(q, k, v, ma.causal())
    torch.autograd.grad(out.sum(), (q, k, v), create_graph=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_autocast_is_ignored(path_device, dtype):
    q, k, v = (t.detach() for t in _inputs(path_device, lq=40, lk=40, d=16, dtype=dtype))
    mask = MASK.to(q.device)
    out, lse = ma.attention(q, k, v, mask, return_lse=True)
    for amp_dtype in (torch.bfloat16, torch.float16):
        with torch.autocast(q.device.type, dtype=amp_dtype):
            a_out, a_lse = ma.attention(q, k, v, mask, return_lse=True)
        assert a_out.dtype == dtype and a_lse.dtype == torch.float32
        assert torch.equal(a_out, out) and torch.equal(a_lse, lse)


def test_paths_agree_under_autocast(monkeypatch):
    if not op.interpreting():
        pytest.skip("compares the Triton interpreter with the torch path")
    q, k, v = rand_qkv(1, 4, 2, 40, 40, 16, torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        t_out, t_lse = ma.attention(q, k, v, MASK, return_lse=True)
        monkeypatch.setattr(op, "interpreting", lambda: False)
        c_out, c_lse = ma.attention(q, k, v, MASK, return_lse=True)
    assert c_lse.dtype == t_lse.dtype == torch.float32 and c_out.dtype == t_out.dtype == torch.float32
    torch.testing.assert_close(c_out, t_out, rtol=0, atol=2e-5)
    torch.testing.assert_close(c_lse, t_lse, rtol=0, atol=2e-5)
