"""Host-side choices of the Hopper backward (CPU: no kernel runs): where it applies and which
maps it leaves to the portable kernels."""
import pytest
import torch

import maskattn as ma
from benchmarks import families
from maskattn.kernels import config, flash_bwd_sm90, flash_bwd_sm90_wide, sm90_common


def test_not_used_off_the_gpu():
    q = torch.randn(1, 2, 256, 128, dtype=torch.bfloat16)
    bm = ma.compile_mask(ma.causal(), 256, 256)
    assert not flash_bwd_sm90.supported(q, bm, 128, None, 2)


@pytest.mark.parametrize("L", [8192, 32768])
@pytest.mark.parametrize("family,bound", [("causal", False), ("sliding", False), ("documents", False),
                                          ("longformer", True), ("tree", True)])
def test_column_bound_maps(monkeypatch, L, family, bound):
    # 16 heads on a 132-SM GPU: Longformer's global keys and the tree's trunk are key tiles whose
    # program outlasts the mean (session 9's H200 A/B: 0.72-0.77x the portable kernels there)
    monkeypatch.setattr(config, "sm_count", lambda device: 132)
    bm = ma.compile_mask(families.mask(family, L), L, L)
    assert flash_bwd_sm90.column_bound(bm, 16, 1) == bound
    assert flash_bwd_sm90.column_bound(bm, 32, 4) == bound  # GQA: 32 query heads on 8 KV heads


def test_column_bound_counts_the_query_heads_of_a_kv_head(monkeypatch):
    monkeypatch.setattr(config, "sm_count", lambda device: 132)
    bm = ma.compile_mask(ma.causal(), 8192, 8192)
    assert bm.max_col_tiles == 64
    assert not flash_bwd_sm90.column_bound(bm, 16, 1)
    # all 16 query heads on one KV head: 16 programs of 16 columns each
    assert flash_bwd_sm90.column_bound(bm, 16, 16)


@pytest.mark.parametrize("L,family,short", [(32768, "causal", False), (8192, "causal", True),
                                            (32768, "sliding", True), (32768, "documents", True),
                                            (32768, "longformer", True), (32768, "tree", True)])
def test_persistent_grid_for_short_columns(L, family, short):
    # key tiles of a few query tiles run on a persistent grid (a program's start is a large part
    # of such a tile's work); causal columns at 32k (128 query tiles on average) one program each
    bm = ma.compile_mask(families.mask(family, L), L, L)
    assert flash_bwd_sm90.short_columns(bm, 1) == short
    if short:  # the query heads of a KV head add up: 32 of them make every column long
        assert not flash_bwd_sm90.short_columns(bm, 32)


def test_persistent_grid_threshold_is_the_mean_column():
    n = 64  # 64 x 64 tiles; a circulant band: c full tiles in every column
    i = torch.arange(n)
    limit = flash_bwd_sm90.PERSISTENT_MAX_MEAN_TILES
    for c, short in ((limit, True), (limit + 1, False)):
        layout = (i[:, None] - i[None, :]) % n < c
        bm = ma.compile_mask(ma.block_sparse(layout, 128, 128), 128 * n, 128 * n)
        assert bm.nonempty_tiles == c * n
        assert flash_bwd_sm90.short_columns(bm, 1) == short
    assert not flash_bwd_sm90.short_columns(ma.compile_mask(ma.causal(), 16384, 16384), 1)


def test_gluon_kernels_only_on_checked_triton_releases():
    # Gluon's API changes between releases: an unchecked one runs the portable kernels
    from maskattn.kernels import flash_fwd_sm90
    assert config.gluon_tested("3.6.0") and config.gluon_tested("3.6.1")
    assert not config.gluon_tested("3.9.0") and not config.gluon_tested("3.5.1")
    for module in (sm90_common, flash_fwd_sm90, flash_bwd_sm90):
        assert not module.HAVE_GLUON or config.gluon_tested()


def test_supported_only_where_checked(monkeypatch):
    # a stand-in for a CUDA tensor: the host checks read only device, dtype and shape
    class FakeCuda:
        device = torch.device("cuda", 0)
        dtype = torch.bfloat16
        shape = (1, 16, 8192, 128)

    monkeypatch.setattr(sm90_common, "HAVE_GLUON", True)
    monkeypatch.setattr(sm90_common, "capability", lambda device: (9, 0))
    monkeypatch.setattr(config, "sm_count", lambda device: 132)
    bm = ma.compile_mask(ma.causal(), 8192, 8192)
    assert flash_bwd_sm90.supported(FakeCuda(), bm, 128, None, 16)
    assert not flash_bwd_sm90.supported(FakeCuda(), bm, 128, 30.0, 16)  # softcap
    assert flash_bwd_sm90.supported(FakeCuda(), bm, 64, None, 16)
    assert not flash_bwd_sm90.supported(FakeCuda(), bm, 96, None, 16)  # head dim 96
    assert not flash_bwd_sm90.supported(FakeCuda(), bm, 256, None, 16)
    for d_tma, wide in ((128, False), (136, True), (200, True), (256, True), (264, False)):  # head dims above 128
        assert flash_bwd_sm90_wide.supported(FakeCuda(), bm, d_tma, None, 16) == wide
    assert not flash_bwd_sm90_wide.supported(FakeCuda(), bm, 256, 30.0, 16)  # softcap
    assert not flash_bwd_sm90.supported(FakeCuda(), bm, 128, None, 1)  # GQA 16:1 -> column-bound, long columns
    # column-bound on the persistent grid: key tiles cut into parts (split_columns); not in the wide kernel
    global_keys = ma.compile_mask(families.mask("longformer", 8192), 8192, 8192)
    assert flash_bwd_sm90.column_bound(global_keys, 16, 1) and flash_bwd_sm90.short_columns(global_keys, 1)
    assert flash_bwd_sm90.supported(FakeCuda(), global_keys, 128, None, 16)
    assert not flash_bwd_sm90_wide.supported(FakeCuda(), global_keys, 256, None, 16)
    small_q = ma.compile_mask(ma.causal(), 8192, 8192, block_q=64)
    assert not flash_bwd_sm90.supported(FakeCuda(), small_q, 128, None, 16)
    one_tile = ma.compile_mask(ma.causal(), 100, 8192)  # one query tile: counts unknown on the GPU
    one_tile.nonempty_tiles = 0
    assert not flash_bwd_sm90.supported(FakeCuda(), one_tile, 128, None, 16)
    FakeCuda.dtype = torch.float32
    assert not flash_bwd_sm90.supported(FakeCuda(), bm, 128, None, 16)
