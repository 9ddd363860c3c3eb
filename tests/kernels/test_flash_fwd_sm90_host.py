"""Host-side choices of the Hopper forward (CPU: no kernel runs): where it applies, and which
maps take its persistent grid."""
import pytest
import torch

import maskattn as ma
from benchmarks import families
from maskattn.kernels import config, flash_fwd_sm90


def test_not_used_off_the_gpu():
    q = torch.randn(1, 2, 256, 128, dtype=torch.bfloat16)
    bm = ma.compile_mask(ma.causal(), 256, 256)
    assert not flash_fwd_sm90.supported(q, bm, 128, None)


@pytest.mark.parametrize("family,persistent", [("causal", False), ("longformer", False), ("sliding", True),
                                               ("documents", True), ("tree", True)])
def test_persistent_grid_for_short_rows_only(monkeypatch, family, persistent):
    # the benchmark families at 32k with 16 heads on a 132-SM GPU (session 8's H200 A/B):
    # causal rows are long, Longformer's global rows outlast a program slot
    monkeypatch.setattr(config, "sm_count", lambda device: 132)
    bm = ma.compile_mask(families.mask(family, 32768), 32768, 32768)
    assert flash_fwd_sm90.persistent(bm, heads_per_group=16) == persistent


@pytest.mark.parametrize("family", ["causal", "sliding"])
def test_thread_release_only_on_the_persistent_grid(monkeypatch, family):
    # per-thread releases paid on the persistent grid (sliding / documents / tree +2-3%) and cost
    # causal, run one program per item, 1.7% (H200, session 18): the launch follows the grid
    monkeypatch.setattr(config, "sm_count", lambda device: 132)
    monkeypatch.setattr(flash_fwd_sm90, "sm_count", lambda device: 132)
    launches = []
    monkeypatch.setattr(flash_fwd_sm90, "launch_sm90", lambda grid, *args, **kw: launches.append((grid, kw)))
    L = 32768
    bm = ma.compile_mask(families.mask(family, L), L, L)
    q = torch.empty(1, 16, L, 128, dtype=torch.bfloat16, device="meta")
    lse = torch.empty(1, 16, L, device="meta")
    flash_fwd_sm90.sm90_forward(q, q, q, q, lse, bm, 128 ** -0.5, 128, 128, 0, 0)
    (grid, kw), = launches
    on_persistent_grid = flash_fwd_sm90.persistent(bm, heads_per_group=16)
    assert on_persistent_grid == (family == "sliding")
    assert kw["thread_release"] == on_persistent_grid
    assert kw["passes"] == (2 if on_persistent_grid else 1)
    assert grid[0] == (132 if on_persistent_grid else 16 * bm.n_q_tiles)
