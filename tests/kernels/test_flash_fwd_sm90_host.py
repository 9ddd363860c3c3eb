"""Host-side choices of the Hopper forward (CPU: no kernel runs): where it applies, which maps
take its dynamic schedule, and the work lists of the static one."""
import numpy as np
import pytest
import torch

import maskattn as ma
from benchmarks import families
from maskattn.kernels import config, flash_fwd_sm90, sm90_common, work_lists
from maskattn.kernels.forward import map_strides


def test_not_used_off_the_gpu():
    q = torch.randn(1, 2, 256, 128, dtype=torch.bfloat16)
    bm = ma.compile_mask(ma.causal(), 256, 256)
    assert not flash_fwd_sm90.supported(q, bm, 128, None)


@pytest.mark.parametrize("d_tma,block_k,config", [(16, 128, (64, 128, 3)), (64, 128, (64, 128, 3)),
                                                   (72, 128, (128, 128, 3)), (128, 64, (128, 64, 3)),
                                                   (136, 128, (256, 64, 2)), (256, 128, (256, 64, 2))])
def test_head_config(d_tma, block_k, config):
    # the narrowest shared-memory width that holds the (padded) head dim; key blocks no longer than a tile
    assert flash_fwd_sm90.head_config(d_tma, block_k) == config


def test_head_configs_fit_shared_memory():
    # Q (two 64-row halves) and the K / V ring in the 227 KB an H100 / H200 program may take
    for block_d, block_n, stages in flash_fwd_sm90.HEAD_CONFIGS:
        assert 2 * (2 * 64 * block_d + 2 * stages * block_n * block_d) <= 227 * 1024


def test_supported_head_dims_and_tiles(monkeypatch):
    # a stand-in for a CUDA tensor on an H100: the host checks read only device and dtype
    class FakeCuda:
        device = torch.device("cuda", 0)
        dtype = torch.bfloat16

    monkeypatch.setattr(sm90_common, "HAVE_GLUON", True)
    monkeypatch.setattr(sm90_common, "capability", lambda device: (9, 0))
    bm = ma.compile_mask(ma.causal(), 1024, 1024)
    for d_tma in (16, 40, 64, 72, 128, 200, 256):  # every width of HEAD_CONFIGS, exact or zero-padded
        assert flash_fwd_sm90.supported(FakeCuda(), bm, d_tma, None)
    assert not flash_fwd_sm90.supported(FakeCuda(), bm, 264, None)
    assert not flash_fwd_sm90.supported(FakeCuda(), bm, 128, 30.0)  # softcap
    assert not flash_fwd_sm90.supported(FakeCuda(), ma.compile_mask(ma.causal(), 1024, 1024, block_q=64), 128, None)
    FakeCuda.dtype = torch.float32
    assert not flash_fwd_sm90.supported(FakeCuda(), bm, 128, None)


def test_head_config_rejects_wider_heads():
    with pytest.raises(ValueError, match="head dim"):
        flash_fwd_sm90.head_config(264, 128)


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
    # program's items again) and work lists only on the static schedule, a zeroed counter only
    # on the dynamic one
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
        assert kw["lists"] is None
        assert kw["section"] == 2  # two heads' K and V (16 MiB each at 32k) fit the L2
    else:
        assert kw["sched"] is None
        assert kw["section"] is None  # the lists' item numbers: plain heaviest-first order
        ptr, items = kw["lists"]
        assert ptr.dtype == items.dtype == torch.int32 and ptr.shape == (133,)
        assert sorted(items.tolist()) == list(range(16 * bm.n_q_tiles))


def _items_by_hand(bm, batch, heads, map_sb, map_sh):
    """(b, h, query tile, 128-row slice) of each item as the kernel's ``_item`` numbers them:
    rank t // (batch * heads) of ``q_order`` (in 128-row slices) for (b, h) = t % (batch * heads)."""
    slices = bm.block_q // 128
    out = []
    for t in range(batch * heads * bm.n_q_tiles * slices):
        rank, bh = divmod(t, batch * heads)
        b, h = divmod(bh, heads)
        qt = int(bm.q_order[b * map_sb + h * map_sh, rank // slices])
        out.append((b, h, qt, rank % slices))
    return out


def _cases():
    """(mask, batch, query heads, group, block_q): a map shared by every head, one per batch row,
    one per head under GQA with two 128-row slices per query tile."""
    lq, lk = 700, 900
    valid = torch.ones(3, lk, dtype=torch.bool)
    valid[1, 400:] = False
    g = torch.Generator().manual_seed(0)
    per_head = ma.dense(torch.rand(1, 8, lq, lk, generator=g) < torch.linspace(0.0, 0.02, 8)[:, None, None])
    return dict(shared=(ma.documents([300, 5, 595]), 2, 2, 1, 128),
                per_batch=(ma.causal() & ma.padding(valid), 3, 4, 2, 128),
                per_head_gqa=(per_head, 1, 8, 4, 256))


@pytest.mark.parametrize("case", ["shared", "per_batch", "per_head_gqa"])
def test_item_costs_count_each_items_tiles(case):
    mask, batch, heads, group, block_q = _cases()[case]
    bm = ma.compile_mask(mask, 700, 900, block_q=block_q)
    sb, sh = map_strides(bm)
    tiles = bm.to_dense()  # (batch, heads, Tq, Tk): 0 empty, 1 partial, 2 full
    f = flash_fwd_sm90
    want = [f._ITEM_COST + f._FULL_COST * int((tiles[b % bm.batch, h % bm.heads, qt] == 2).sum())
            + f._PARTIAL_COST * int((tiles[b % bm.batch, h % bm.heads, qt] == 1).sum())
            for b, h, qt, _ in _items_by_hand(bm, batch, heads, sb, sh)]
    np.testing.assert_allclose(flash_fwd_sm90.item_costs(bm, batch, heads, sb, sh), want)


@pytest.mark.parametrize("case", ["shared", "per_batch", "per_head_gqa"])
def test_item_positions_order_items_by_query_tile_then_head(case):
    # neighbours in the locality order read the same K / V rows: one KV head's query heads on one
    # query tile side by side, every head's query tile before the next query tile
    mask, batch, heads, group, block_q = _cases()[case]
    bm = ma.compile_mask(mask, 700, 900, block_q=block_q)
    sb, sh = map_strides(bm)
    pos = flash_fwd_sm90.item_positions(bm, batch, heads, group, sb, sh)
    items = _items_by_hand(bm, batch, heads, sb, sh)
    assert sorted(pos.tolist()) == list(range(len(items)))
    by_position = [items[t] for t in np.argsort(pos)]
    assert by_position == sorted(items, key=lambda i: (i[0], i[2], i[1] // group, i[1] % group, i[3]))


def test_program_lists_keep_neighbouring_items_together_and_on_the_map():
    # documents 32k, 16 heads, 132 programs: the cost model takes the locality lists (busiest
    # program within LOCALITY_SLACK of LPT's), so the first items of the programs are the first
    # 132 items in locality order (the first query tiles of all 16 heads), one each; kept on the
    # map for later calls
    bm = ma.compile_mask(families.mask("documents", 32768), 32768, 32768)
    lists = flash_fwd_sm90.program_lists(bm, 1, 16, 1, 0, 0, 132)
    assert flash_fwd_sm90.program_lists(bm, 1, 16, 1, 0, 0, 132) is lists
    ptr, items = (x.numpy() for x in lists)
    pos = flash_fwd_sm90.item_positions(bm, 1, 16, 1, 0, 0)
    assert sorted(pos[items[ptr[:-1]]].tolist()) == list(range(132))
    costs = flash_fwd_sm90.item_costs(bm, 1, 16, 0, 0)
    loads = np.array([costs[items[ptr[p]:ptr[p + 1]]].sum() for p in range(132)])
    lpt, _ = work_lists._greedy(np.argsort(-costs, kind="stable"), costs, 132)
    assert loads.max() <= work_lists._busiest(lpt, costs, 132) + work_lists.LOCALITY_SLACK * loads.mean() + 1e-9
    # one program per item: item t on program t (nothing read back)
    ptr, items = flash_fwd_sm90.program_lists(bm, 1, 16, 1, 0, 0, costs.size)
    assert torch.equal(items, torch.arange(costs.size, dtype=torch.int32))
