"""NaN / Inf stored at positions the mask excludes (padding, unwritten KV-cache slots, keys
some rows may not see) never reach an output or a gradient that does not depend on them.

For every case: rows that attend to no poisoned key give finite outputs equal to the reference
on clean inputs (fully masked rows: 0 and -inf); their dQ is finite and correct; dK / dV are
finite and correct for keys no poisoned row attends to, and exactly 0 for keys no row attends
to. Rows that do attend to a poisoned key are not checked (their values are not specified).
Runs on every path: Triton interpreter, block-sparse PyTorch path, CUDA (GPU-marked)."""
import pytest
import torch

import maskattn as ma
from attention_checks import check_close, kernel_grads, rand_qkv, reference_grads
from maskattn import reference

# numpy (the interpreter) warns about the very NaN these tests plant
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _padding_case():
    valid = torch.ones(2, 70, dtype=torch.bool)
    valid[0, 60:] = False  # right padding, inside a partial key tile
    valid[1, :10] = False  # left padding: rows 0..9 of batch row 1 see nothing (fully masked)
    valid[1, 45:] = False
    return dict(mask=ma.padding(valid) & ma.causal(), lq=70, lk=70, q_offset=None, bad=~valid)


def _cache_case():
    # a static cache of 96 slots, 45 written; 5 new queries at positions 40..44
    bad = torch.zeros(2, 96, dtype=torch.bool)
    bad[:, 45:] = True
    return dict(mask=ma.causal(), lq=5, lk=96, q_offset=40, bad=bad)


def _causal_last_case():
    # only the last row sees the last key: every other row must stay finite and exact
    bad = torch.zeros(2, 50, dtype=torch.bool)
    bad[:, 49] = True
    return dict(mask=ma.causal(), lq=50, lk=50, q_offset=None, bad=bad)


def _window_first_case():
    # rows 0..7 see key 0; keys 8.. are seen only by rows that do not see key 0
    bad = torch.zeros(2, 60, dtype=torch.bool)
    bad[:, 0] = True
    return dict(mask=ma.sliding_window(7), lq=60, lk=60, q_offset=None, bad=bad)


CASES = {"padding": _padding_case, "kv_cache": _cache_case, "causal_last_key": _causal_last_case,
         "window_first_key": _window_first_case}
POISONS = [("k", float("nan")), ("v", float("nan")), ("k", float("inf")), ("v", float("-inf"))]


def _regions(mask, lq, lk, q_offset, bad, hq, hkv):
    """Bool selections: rows (B, Hq, Lq) that see no bad key, keys (B, Hkv, Lk) that no such-seeing
    row sees (and are not bad), keys that no row sees."""
    allowed = mask.materialize(lq, lk, q_offset=q_offset).expand(bad.shape[0], 1, lq, lk)
    poisoned = (allowed & bad[:, None, None, :]).any(-1)  # (B, 1, Lq)
    seen_by_poisoned = (allowed & poisoned[..., None]).any(-2)  # (B, 1, Lk)
    unseen = ~allowed.any(-2)  # (B, 1, Lk)
    rows = (~poisoned).expand(-1, hq, -1)
    keys = (~seen_by_poisoned & ~bad[:, None]).expand(-1, hkv, -1)
    return rows, keys, unseen.expand(-1, hkv, -1)


def _run(device, case, which, value, part, dtype=torch.float16, block=(32, 32)):
    c = CASES[case]()
    b, hq, hkv, d = 2, 2, 1, 16
    lq, lk, q_offset, bad = c["lq"], c["lk"], c["q_offset"], c["bad"]
    q, k, v = rand_qkv(b, hq, hkv, lq, lk, d, dtype, device)
    poisoned = {"k": k.clone(), "v": v.clone()}
    poisoned[which].masked_fill_(bad.to(device)[:, None, :, None], value)
    bm = ma.compile_mask(c["mask"], lq, lk, q_offset=q_offset, block_q=block[0], block_k=block[1], device=device)
    rows, keys, unseen = (t.to(device) for t in _regions(c["mask"], lq, lk, q_offset, bad, hq, hkv))
    kw = dict(q_offset=q_offset)

    if part == "forward":
        out, lse = ma.attention(q, poisoned["k"], poisoned["v"], bm, return_lse=True)
        ref_o, ref_l = reference.attention(q, k, v, c["mask"], **kw)
        low_o, low_l = reference.attention_low_precision(q, k, v, c["mask"], **kw)
        assert bool(torch.isfinite(out[rows]).all()), "out: non-finite values in rows that see no poisoned key"
        check_close("out", out[rows], ref_o[rows], low_o[rows], dtype, 2)
        check_close("lse", lse[rows], ref_l[rows], low_l[rows], dtype, 2)
        dead = rows & torch.isinf(ref_l)
        assert bool((out[dead] == 0).all()) and bool((lse[dead] == float("-inf")).all())
        return

    grad_out = torch.randn(q.shape, generator=torch.Generator(device=device).manual_seed(1), device=device).to(dtype)
    _, _, (dq, dk, dv) = kernel_grads(q, poisoned["k"], poisoned["v"], bm, grad_out)
    ref_g, low_g = reference_grads(q, k, v, c["mask"], grad_out=grad_out, **kw)
    for name, got, r, lo, sel in zip(("dq", "dk", "dv"), (dq, dk, dv), ref_g, low_g, (rows, keys, keys)):
        if bool(sel.any()):
            assert bool(torch.isfinite(got[sel]).all()), f"{name}: non-finite where every input is finite"
            check_close(name, got[sel], r[sel], lo[sel], dtype, 3)
    assert bool((dk[unseen] == 0).all()) and bool((dv[unseen] == 0).all()), "dK/dV of keys no row sees must be 0"


@pytest.mark.parametrize("which,value", POISONS, ids=["k-nan", "v-nan", "k-inf", "v-neginf"])
@pytest.mark.parametrize("case", list(CASES))
def test_masked_nonfinite_forward(path_device, case, which, value):
    _run(path_device, case, which, value, "forward")


@pytest.mark.parametrize("which,value", POISONS, ids=["k-nan", "v-nan", "k-inf", "v-neginf"])
@pytest.mark.parametrize("case", list(CASES))
def test_masked_nonfinite_backward(path_device, case, which, value):
    _run(path_device, case, which, value, "backward")


@pytest.mark.parametrize("case", list(CASES))
def test_reference_ignores_masked_nonfinite(case):
    # the float64 oracle itself: poisoned masked slots change nothing in the rows that do not see them
    c = CASES[case]()
    q, k, v = rand_qkv(2, 4, 2, c["lq"], c["lk"], 16, torch.float64)
    kp, vp = k.clone(), v.clone()
    kp.masked_fill_(c["bad"][:, None, :, None], float("nan"))
    vp.masked_fill_(c["bad"][:, None, :, None], float("inf"))
    rows, _, _ = _regions(c["mask"], c["lq"], c["lk"], c["q_offset"], c["bad"], 4, 2)
    got_o, got_l = reference.attention(q, kp, vp, c["mask"], q_offset=c["q_offset"])
    ref_o, ref_l = reference.attention(q, k, v, c["mask"], q_offset=c["q_offset"])
    assert torch.equal(got_o[rows], ref_o[rows]) and torch.equal(got_l[rows], ref_l[rows])
    assert bool(torch.isnan(got_o[~rows]).all()) and bool(torch.isnan(got_l[~rows]).all())
