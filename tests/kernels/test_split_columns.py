"""Key tiles of the Hopper backward cut into parts (``split_columns``; CPU: host side only, the
kernel's cuts run in ``test_flash_bwd_sm90.py``)."""
import numpy as np
import pytest
import torch

import maskattn as ma
from benchmarks import families
from maskattn.kernels import config, flash_bwd_sm90, split_columns

BLOCK_COSTS = (1.0, 1.6)  # a full / partial 64-row block, as flash_bwd_sm90's item costs


def _items(full, partial):
    full, partial = np.asarray(full), np.asarray(partial)
    costs = 2 * BLOCK_COSTS[0] * full.sum(1) + 2 * BLOCK_COSTS[1] * partial.sum(1) + 2.0
    return full, partial, costs, np.arange(costs.size)[::-1].copy()


def test_parts_cover_each_cut_item_once():
    # (items, query heads of a KV head): full / partial query tiles of each item's column per head
    full, partial, costs, positions = _items([[10, 0], [1, 2], [0, 0], [30, 7]], [[1, 3], [0, 0], [0, 0], [2, 0]])
    work = split_columns.cut_items(full, partial, costs, positions, cap=12.0, block_costs=BLOCK_COSTS,
                                   blocks_per_tile=2, device="cpu")
    parts = work.parts.numpy()
    for t in range(costs.size):
        rows = parts[parts[:, 0] == t]
        blocks = 2 * (full[t].sum() + partial[t].sum())
        if (costs[t] - 2.0) <= 12.0:  # whole: one row, never stopped inside the column
            assert rows.tolist() == [[t, 0, split_columns.NOT_CUT, -1]]
            continue
        assert len(rows) == int(np.ceil((costs[t] - 2.0) / 12.0))
        assert rows[0, 1] == 0 and rows[-1, 2] == blocks and (rows[1:, 1] == rows[:-1, 2]).all()
        assert (rows[:, 1] < rows[:, 2]).all() and len(set(rows[:, 3])) == 1
        assert work.slot_items[rows[0, 3]] == t
    assert work.n_slots == 2 and sorted(work.slot_items.tolist()) == [0, 3]
    # the parts' costs add up to the items' plus each extra part's start and its atomics
    extra = sum((parts[:, 0] == t).sum() - 1 for t in range(costs.size))
    cut = parts[:, 3] >= 0
    assert work.costs.sum() == pytest.approx(costs.sum() + extra * 2.0 + cut.sum() * split_columns.SPLIT_COST)
    assert work.costs[cut].max() <= 12.0 + BLOCK_COSTS[1] + 2.0 + split_columns.SPLIT_COST
    assert sorted(work.positions.tolist()) == list(range(len(parts)))  # a permutation for the lists


def test_cut_points_follow_the_block_costs():
    # one head: 4 full blocks (cost 1) then 4 partial ones (1.6): two parts split the cost 10.4 near 5.2
    full, partial, costs, positions = _items([[2]], [[2]])
    work = split_columns.cut_items(full, partial, costs, positions, cap=6.0, block_costs=BLOCK_COSTS,
                                   blocks_per_tile=2, device="cpu")
    assert work.parts.tolist() == [[0, 0, 5, 0], [0, 5, 8, 0]]


def test_cap_is_at_least_two_blocks():
    # 6 full blocks (work 6) at a cap of 0, raised to two partial blocks' cost (3.2): two parts of 3
    full, partial, costs, positions = _items([[3]], [[0]])
    work = split_columns.cut_items(full, partial, costs, positions, cap=0.0, block_costs=BLOCK_COSTS,
                                   blocks_per_tile=2, device="cpu")
    assert work.parts.tolist() == [[0, 0, 3, 0], [0, 3, 6, 0]]


def test_slot_rows_and_finish():
    # items of 2 (batch, KV head) pairs; slot 0 holds item 3 (pair 1, key tile 2: the last, clipped
    # at Lk = 300), slot 1 item 0 (pair 0, key tile 0)
    tile_k, lk, d = 128, 300, 4
    item_tiles = np.array([0, 0, 1, 2, 1, 2])
    dst, src = split_columns.slot_rows(np.array([3, 0]), item_tiles, 2, lk, tile_k, "cpu")
    assert dst.tolist() == [lk + 256 + r for r in range(44)] + list(range(128))
    assert src.tolist() == list(range(44)) + [128 + r for r in range(128)]
    acc = torch.randn(2, 2, tile_k, d)
    dk, dv = torch.zeros(1, 2, lk, d, dtype=torch.bfloat16), torch.zeros(1, 2, lk, d, dtype=torch.bfloat16)
    split_columns.finish(acc, dk, dv, dst, src)
    assert torch.equal(dk[0, 1, 256:], acc[0, 0, :44].bfloat16()) and torch.equal(dv[0, 0, :128], acc[1, 1].bfloat16())
    assert int((dk != 0).sum()) == (44 + 128) * d


@pytest.mark.parametrize("L", [8192, 32768])
@pytest.mark.parametrize("family,cut", [("tree", True), ("longformer", True), ("documents", False),
                                        ("sliding", False)])
def test_benchmark_maps(monkeypatch, L, family, cut):
    # 16 heads on 132 SMs: the trunk / global key tiles are cut (16 slots: one tile per head) and the
    # busiest program's modelled work comes within 5% of the mean (1.2-1.3x with whole key tiles)
    monkeypatch.setattr(config, "sm_count", lambda device: 132)
    bm = ma.compile_mask(families.mask(family, L), L, L)
    assert flash_bwd_sm90.column_bound(bm, 16, 1) == cut
    lists = flash_bwd_sm90.split_lists(bm, 1, 16, 1, 0, 0, L, 132)
    if not cut:  # no key tile outweighs half the mean work per SM: whole items, no lists of parts
        assert lists is None
        return
    ptr, entries, parts, n_slots, dst, src = lists
    assert n_slots == 16 and dst.numel() == src.numel() == 16 * 128
    full, partial = flash_bwd_sm90.item_tile_counts(bm, 1, 16, 1, 0, 0)
    costs = flash_bwd_sm90.item_costs(bm, 1, 16, 1, 0, 0)
    work = split_columns.cut_items(full, partial, costs, flash_bwd_sm90.item_positions(bm, 1, 16, 1, 0, 0),
                                   split_columns.SPLIT_SHARE * costs.sum() / 132, BLOCK_COSTS, 2, "cpu")
    assert torch.equal(work.parts, parts)
    loads = np.bincount(np.repeat(np.arange(132), np.diff(ptr.numpy())), weights=work.costs[entries.numpy()])
    assert loads.max() <= 1.05 * costs.sum() / 132
    assert flash_bwd_sm90.split_lists(bm, 1, 16, 1, 0, 0, L, 132) is lists  # cached on the map


def test_no_cut_below_the_share():
    bm = ma.compile_mask(families.mask("sliding", 8192), 8192, 8192)
    assert flash_bwd_sm90.split_lists(bm, 1, 16, 1, 0, 0, 8192, 132) is None
    assert flash_bwd_sm90.split_lists(bm, 1, 16, 1, 0, 0, 8192, 132) is None
    assert bm.__dict__["_bwd_sm90_splits"] == {(1, 16, 1, 132, 8192): False}  # "no cut" is cached too
