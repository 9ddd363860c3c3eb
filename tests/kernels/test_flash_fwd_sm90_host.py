"""Host-side choices of the Hopper forward (CPU: no kernel runs): where it applies, and which
maps take its dynamic schedule."""
import pytest
import torch

import maskattn as ma
from benchmarks import families
from maskattn.kernels import config, flash_fwd_sm90


def test_not_used_off_the_gpu():
    q = torch.randn(1, 2, 256, 128, dtype=torch.bfloat16)
    bm = ma.compile_mask(ma.causal(), 256, 256)
    assert not flash_fwd_sm90.supported(q, bm, 128, None)


@pytest.mark.parametrize("family,dynamic", [("causal", True), ("longformer", True), ("sliding", False),
                                            ("documents", False), ("tree", False)])
def test_dynamic_schedule_for_long_rows(monkeypatch, family, dynamic):
    # the benchmark families at 32k with 16 heads on a 132-SM GPU: causal rows are long,
    # Longformer's global rows outlast a program slot; the others take the static snake
    monkeypatch.setattr(config, "sm_count", lambda device: 132)
    bm = ma.compile_mask(families.mask(family, 32768), 32768, 32768)
    assert flash_fwd_sm90.dynamic_schedule(bm, heads_per_group=16) == dynamic


@pytest.mark.parametrize("family", ["causal", "sliding"])
def test_launch_follows_the_schedule(monkeypatch, family):
    # one program per SM either way, per-thread releases; the NaN redo pass (which walks a
    # program's items again) only on the static schedule, a zeroed counter only on the dynamic one
    monkeypatch.setattr(config, "sm_count", lambda device: 132)
    monkeypatch.setattr(flash_fwd_sm90, "sm_count", lambda device: 132)
    launches = []
    monkeypatch.setattr(flash_fwd_sm90, "launch_sm90",
                        lambda grid, *args, **kw: launches.append((grid, kw)) or (None, (), {}))
    L = 32768
    bm = ma.compile_mask(families.mask(family, L), L, L)
    q = torch.empty(1, 16, L, 128, dtype=torch.bfloat16, device="meta")
    lse = torch.empty(1, 16, L, device="meta")
    flash_fwd_sm90.sm90_forward(q, q, q, q, lse, bm, 128 ** -0.5, 128, 128, 0, 0)
    (grid, kw), = launches
    dynamic = family == "causal"
    assert flash_fwd_sm90.dynamic_schedule(bm, heads_per_group=16) == dynamic
    assert grid == (132,)
    assert kw["thread_release"]
    assert kw["passes"] == (1 if dynamic else 2)
    if dynamic:
        assert kw["sched"].dtype == torch.int32 and kw["sched"].shape == (1,)
    else:
        assert kw["sched"] is None
