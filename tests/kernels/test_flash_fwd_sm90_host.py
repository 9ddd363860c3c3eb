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
