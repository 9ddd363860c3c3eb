"""Replayed training launches (``plans.ForwardPlan``, ``plans.BackwardPlan``): a call like an
earlier one on the same map replays its launches with the new tensors, and must give what a
fresh call gives (GPU only: replays need compiled Hopper kernels)."""
import pytest
import torch

import maskattn as ma
from attention_checks import check_backward, check_forward, count_calls, kernel_grads, rand_qkv
from maskattn.kernels import flash_bwd_sm90, flash_bwd_sm90_wide, flash_fwd_sm90, forward, relaunch, split_columns

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(
    not (torch.cuda.is_available() and relaunch.available() and flash_fwd_sm90.HAVE_GLUON
         and torch.cuda.get_device_capability() == (9, 0)),
    reason="needs an sm_90 GPU, Gluon and a Triton release with replays")]
DEV = "cuda"
MASKS = dict(causal=lambda L: ma.causal(), sliding=lambda L: ma.sliding_window(300),
             documents=lambda L: ma.documents([L // 3, L // 3, L - 2 * (L // 3)]))


@pytest.fixture
def recorded(monkeypatch):
    """Counts the calls that run the Hopper kernels' host paths (not replays); small maps are
    let onto the Hopper backward (``column_bound``)."""
    calls = {"fwd": 0, "bwd": 0}
    fwd, bwd = flash_fwd_sm90.sm90_forward, flash_bwd_sm90.backward_sm90

    def count(name, real):
        def counted(*args):
            calls[name] += 1
            return real(*args)
        return counted

    monkeypatch.setattr(flash_fwd_sm90, "sm90_forward", count("fwd", fwd))
    monkeypatch.setattr(flash_bwd_sm90, "backward_sm90", count("bwd", bwd))
    monkeypatch.setattr(flash_bwd_sm90, "column_bound", lambda *args: False)
    return calls


def _fresh(bm):
    """The same map without recorded plans: what a first call computes."""
    return ma.BlockMap(**{f: getattr(bm, f) for f in bm.__dataclass_fields__})


def _inputs(seed, lq=1000, lk=1000, hq=4, hkv=2, batch=1):
    q, k, v = rand_qkv(batch, hq, hkv, lq, lk, 128, torch.bfloat16, DEV, seed=seed)
    return q, k, v, torch.randn(q.shape, generator=torch.Generator(DEV).manual_seed(seed + 7), device=DEV).to(q.dtype)


@pytest.mark.parametrize("name", ["causal", "sliding", "documents"])
@pytest.mark.parametrize("grad_lse", [False, True])
def test_training_calls_replay(recorded, name, grad_lse):
    # odd lengths, GQA 2; causal takes the forward's counter schedule, the others the static one
    mask = MASKS[name](1000).to(DEV)
    bm = ma.compile_mask(mask, 1000, 1000, device=DEV)
    q, k, v, g = _inputs(0)
    glse = torch.randn(q.shape[:3], device=DEV) if grad_lse else None
    kernel_grads(q, k, v, bm, g, grad_lse=glse)
    assert recorded == {"fwd": 1, "bwd": 1}
    assert len(bm._forward_plans) == 1 and len(bm._backward_plans) == 1
    q, k, v, g = _inputs(1)
    glse = torch.randn(q.shape[:3], device=DEV) if grad_lse else None
    out, lse, (dq, dk, dv) = kernel_grads(q, k, v, bm, g, grad_lse=glse)
    assert recorded == {"fwd": 1, "bwd": 1}  # replayed
    out2, lse2, (dq2, dk2, dv2) = kernel_grads(q, k, v, _fresh(bm), g, grad_lse=glse)
    assert recorded == {"fwd": 2, "bwd": 2}
    # the forward and dK / dV are bitwise reproducible; dQ is summed with atomics
    assert torch.equal(out, out2) and torch.equal(lse, lse2) and torch.equal(dk, dk2) and torch.equal(dv, dv2)
    check_forward(q, k, v, mask, out=out, lse=lse)
    check_backward(q, k, v, mask, grads=(dq, dk, dv), grad_out=g, grad_lse=glse)


def test_cut_key_tiles_replay(recorded, monkeypatch):
    # key tiles cut into parts (split_columns; forced on a small map, three programs): a replay
    # zeroes its own accumulator for them and casts it into dK / dV
    monkeypatch.setattr(flash_bwd_sm90, "column_bound", lambda *args: True)
    monkeypatch.setattr(flash_bwd_sm90, "sm_count", lambda device: 3)
    monkeypatch.setattr(flash_bwd_sm90, "PERSISTENT_MAX_MEAN_TILES", 10**9)
    monkeypatch.setattr(split_columns, "SPLIT_SHARE", 0.0)
    cuts = count_calls(monkeypatch, split_columns, "finish")
    mask = MASKS["documents"](1000).to(DEV)
    bm = ma.compile_mask(mask, 1000, 1000, device=DEV)
    kernel_grads(*_inputs(0)[:3], bm, _inputs(0)[3])
    q, k, v, g = _inputs(1)
    out, lse, (dq, dk, dv) = kernel_grads(q, k, v, bm, g)
    assert recorded == {"fwd": 1, "bwd": 1} and len(cuts) == 2  # the second call replayed, cut too
    _, _, fresh = kernel_grads(q, k, v, _fresh(bm), g)
    assert recorded["bwd"] == 2 and len(cuts) == 3
    for a, b in zip((dq, dk, dv), fresh):  # fp32 sums in another order, then bf16: a rounding step apart
        torch.testing.assert_close(a, b, rtol=1e-2, atol=2e-2)
    check_backward(q, k, v, mask, grads=(dq, dk, dv), grad_out=g)


def test_wide_head_dim_calls_replay(recorded, monkeypatch):
    # head dim 256: the wide backward's launch (its key tiles never cut) is recorded and replayed too
    calls = count_calls(monkeypatch, flash_bwd_sm90_wide, "backward_wide")
    mask = MASKS["sliding"](1000).to(DEV)
    bm = ma.compile_mask(mask, 1000, 1000, device=DEV)
    q, k, v = rand_qkv(1, 4, 2, 1000, 1000, 256, torch.bfloat16, DEV, seed=0)
    kernel_grads(q, k, v, bm, torch.randn_like(q))
    q, k, v = rand_qkv(1, 4, 2, 1000, 1000, 256, torch.bfloat16, DEV, seed=1)
    g = torch.randn_like(q)
    _, _, (dq, dk, dv) = kernel_grads(q, k, v, bm, g)
    assert len(calls) == 1 and len(bm._backward_plans) == 1  # replayed
    _, _, (dq2, dk2, dv2) = kernel_grads(q, k, v, _fresh(bm), g)
    assert len(calls) == 2
    assert torch.equal(dk, dk2) and torch.equal(dv, dv2)  # dQ is summed with atomics
    torch.testing.assert_close(dq, dq2, rtol=0, atol=2e-2)
    check_backward(q, k, v, mask, grads=(dq, dk, dv), grad_out=g)


def test_replay_keeps_masked_non_finite_keys_out(recorded):
    # the preparation launch of a replay cleans K: a NaN / Inf in keys nobody may see reaches no gradient
    valid = 700
    mask = (ma.causal() & ma.padding(torch.arange(1000)[None] < valid)).to(DEV)
    bm = ma.compile_mask(mask, 1000, 1000, device=DEV)
    kernel_grads(*_inputs(0)[:3], bm, _inputs(0)[3])
    q, k, v, g = _inputs(1)
    k[:, :, valid:] = float("nan")
    k[:, 1, valid + 3] = float("inf")
    v[:, :, valid:] = float("inf")
    out, lse, (dq, dk, dv) = kernel_grads(q, k, v, bm, g)
    assert recorded == {"fwd": 1, "bwd": 1}
    assert all(bool(torch.isfinite(t).all()) for t in (out, dq, dv[:, :, :valid], dk[:, :, :valid]))
    k[:, :, valid:], v[:, :, valid:] = 0, 0  # what a fresh call on clean inputs gives
    _, _, (dq2, dk2, dv2) = kernel_grads(q, k, v, _fresh(bm), g)
    assert torch.equal(dk[:, :, :valid], dk2[:, :, :valid]) and torch.equal(dv[:, :, :valid], dv2[:, :, :valid])
    torch.testing.assert_close(dq, dq2, rtol=0, atol=2e-2)


def test_one_plan_per_layout(recorded):
    bm = ma.compile_mask(ma.causal().to(DEV), 1000, 1000, device=DEV)
    for batch in (1, 2, 1, 2):
        q, k, v, g = _inputs(batch, batch=batch)
        _, _, grads = kernel_grads(q, k, v, bm, g)
        check_backward(q, k, v, ma.causal(), grads=grads, grad_out=g)
    assert recorded == {"fwd": 2, "bwd": 2}
    assert len(bm._forward_plans) == 2 and len(bm._backward_plans) == 2


def test_copied_inputs_are_not_recorded(recorded):
    # a query tensor at an address that is not 16-byte aligned reaches the kernel as an aligned
    # copy: that call is not replayable as it is
    bm = ma.compile_mask(ma.causal().to(DEV), 1000, 1000, device=DEV)
    q, k, v, g = _inputs(0)
    shifted = torch.empty(q.numel() + 1, dtype=q.dtype, device=DEV)[1:].view(q.shape)
    shifted.copy_(q)
    out, lse, grads = kernel_grads(shifted, k, v, bm, g)
    assert recorded == {"fwd": 1, "bwd": 1}
    assert not bm.__dict__.get("_forward_plans") and not bm.__dict__.get("_backward_plans")
    check_backward(q, k, v, ma.causal(), grads=grads, grad_out=g)


def test_deterministic_calls_take_the_portable_backward(recorded):
    bm = ma.compile_mask(ma.causal().to(DEV), 1000, 1000, device=DEV)
    q, k, v, g = _inputs(0)
    kernel_grads(q, k, v, bm, g)
    _, _, first = kernel_grads(q, k, v, bm, g, deterministic=True)
    _, _, again = kernel_grads(q, k, v, bm, g, deterministic=True)
    assert recorded == {"fwd": 1, "bwd": 1}  # forwards replayed, backwards portable
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    check_backward(q, k, v, ma.causal(), grads=first, grad_out=g)


def test_no_plans_under_graph_capture(recorded):
    # capture gets launches of its own (a graph must own its buffers), even with a plan recorded
    bm = ma.compile_mask(ma.causal().to(DEV), 1000, 1000, device=DEV)
    q, k, v, _ = _inputs(0)
    eager = ma.attention(q, k, v, bm)
    assert len(bm._forward_plans) == 1
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        ma.attention(q, k, v, bm)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = ma.attention(q, k, v, bm)
    assert recorded["fwd"] == 2 and len(bm._forward_plans) == 1
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(captured, eager)


def test_plan_keys_name_the_kernel_switches(recorded, monkeypatch):
    # switching the Hopper kernels off after a plan was recorded takes the portable kernels
    bm = ma.compile_mask(ma.causal().to(DEV), 1000, 1000, device=DEV)
    q, k, v, g = _inputs(0)
    kernel_grads(q, k, v, bm, g)
    monkeypatch.setattr(flash_fwd_sm90, "ENABLED", False)
    monkeypatch.setattr(flash_bwd_sm90, "ENABLED", False)
    assert forward._plan_key(q, k, v, 128 ** -0.5, None) not in bm._forward_plans
    _, _, grads = kernel_grads(q, k, v, bm, g)
    assert recorded == {"fwd": 1, "bwd": 1}
    check_backward(q, k, v, ma.causal(), grads=grads, grad_out=g)
