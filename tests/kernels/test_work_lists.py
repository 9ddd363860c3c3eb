"""Per-program work lists of the persistent Hopper backward (host side, CPU): the balanced and
snake lists, the item costs they are balanced on, and their caching on the map."""
import numpy as np
import pytest
import torch

import maskattn as ma
from benchmarks import families
from maskattn.kernels import flash_bwd_sm90, work_lists
from maskattn.kernels.forward import map_strides


def _programs(ptr, items):
    ptr, items = ptr.tolist(), items.tolist()
    return [items[ptr[p]:ptr[p + 1]] for p in range(len(ptr) - 1)]


def _snake_reference(n_items, n_programs):
    """Items of each program in the snake (``work_lists.snake_lists``): round r hands items [r P, (r + 1) P) out
    left to right in even rounds, right to left in odd ones."""
    out = [[] for _ in range(n_programs)]
    for r in range(-(-n_items // n_programs)):
        for pid in range(n_programs):
            t = r * n_programs + pid + (r % 2) * (n_programs - 1 - 2 * pid)
            if t < n_items:
                out[pid].append(t)
    return out


@pytest.mark.parametrize("n_items,n_programs", [(1, 1), (7, 7), (10, 3), (12, 3), (1024, 132), (133, 132)])
def test_snake_lists_match_the_static_schedule(n_items, n_programs):
    ptr, items = work_lists.snake_lists(n_items, n_programs, "cpu")
    assert ptr.dtype == items.dtype == torch.int32
    assert _programs(ptr, items) == _snake_reference(n_items, n_programs)


@pytest.mark.parametrize("seed", range(5))
def test_balanced_lists_cover_every_item_once_and_beat_the_snake(seed):
    rng = np.random.default_rng(seed)
    costs = np.rint(rng.exponential(20.0, 500)) + 2
    ptr, items = work_lists.balanced_lists(costs, 37, "cpu")
    lists = _programs(ptr, items)
    assert sorted(items.tolist()) == list(range(500)) and len(lists) == 37
    busiest = max(costs[lst].sum() for lst in lists)
    assert busiest <= max(costs[lst].sum() for lst in _snake_reference(500, 37))
    # LPT's bound: at most the mean plus the largest item (Graham)
    assert busiest <= costs.sum() / 37 + costs.max()


def test_balanced_lists_hand_out_costliest_first():
    # the snake gives program 0 both heavy items (5 + 5 | 1 + 1); LPT: 5 | 5, then 1 | 1, and
    # each program walks its items costliest first
    costs = np.array([5.0, 1.0, 1.0, 5.0])
    ptr, items = work_lists.balanced_lists(costs, 2, "cpu")
    assert _programs(ptr, items) == [[0, 1], [3, 2]]


def test_balanced_lists_keep_the_snake_where_it_evens_out_better():
    costs = np.ones(10)  # LPT and the snake tie: the snake is kept
    ptr, items = work_lists.balanced_lists(costs, 3, "cpu")
    assert _programs(ptr, items) == _snake_reference(10, 3)


def test_locality_lists_follow_the_locality_order_where_costs_allow():
    # equal costs: the locality schedule evens out as well as LPT, so it is taken; its head (all
    # but the LPT tail) is handed out in locality order, round by round over the programs
    rng = np.random.default_rng(0)
    positions = rng.permutation(40)
    ptr, items = work_lists.balanced_lists(np.ones(40), 4, "cpu", positions)
    lists = _programs(ptr, items)
    assert sorted(items.tolist()) == list(range(40))
    head = 40 - round(work_lists.LPT_TAILS[0] * 40)
    for p, lst in enumerate(lists):
        in_head = [t for t in lst if positions[t] < head]
        assert [positions[t] for t in in_head] == list(range(p, head, 4))


@pytest.mark.parametrize("seed", range(4))
def test_locality_lists_stay_within_the_slack_of_lpt(seed):
    rng = np.random.default_rng(seed)
    costs = np.rint(rng.exponential(20.0, 600)) + 2
    positions = rng.permutation(600)
    lpt = _programs(*work_lists.balanced_lists(costs, 37, "cpu"))
    ptr, items = work_lists.balanced_lists(costs, 37, "cpu", positions)
    assert sorted(items.tolist()) == list(range(600))
    slack = work_lists.LOCALITY_SLACK * costs.sum() / 37
    assert max(costs[lst].sum() for lst in _programs(ptr, items)) <= max(costs[lst].sum() for lst in lpt) + slack


def test_locality_lists_give_way_to_lpt_when_the_tail_cannot_even_out():
    # one heavy item last in locality order and shorter tails than it need: LPT's lists are kept
    costs = np.array([1.0] * 30 + [30.0])
    plain = work_lists.balanced_lists(costs, 2, "cpu")
    local = work_lists.balanced_lists(costs, 2, "cpu", np.arange(31))
    assert all(torch.equal(a, b) for a, b in zip(plain, local))


def _first_local_schedule_within_slack(costs, n_programs, positions):
    """The rule of ``balanced_lists`` with positions, stated plainly: every locality schedule
    (tail shares in ``LPT_TAILS`` order) against the better of LPT and the snake; the first
    within ``LOCALITY_SLACK`` x the mean of it is taken (its owners), else None."""
    lpt = _programs(*work_lists.balanced_lists(costs, n_programs, "cpu"))
    bound = max(costs[lst].sum() for lst in lpt) + work_lists.LOCALITY_SLACK * costs.sum() / n_programs
    n = costs.size
    for tail in work_lists.LPT_TAILS:
        in_tail = positions >= n - int(round(tail * n))
        order = np.lexsort((np.where(in_tail, -costs, positions), in_tail))
        owner, _ = work_lists._greedy(order, costs, n_programs)
        if np.bincount(owner, weights=costs, minlength=n_programs).max() <= bound:
            return owner
    return None


@pytest.mark.parametrize("seed", range(12))
def test_locality_lists_follow_the_plain_rule(seed):
    # balanced_lists skips making LPT's lists where a locality schedule is within the slack of a
    # floor no schedule can beat (the mean, the costliest item): the choice must not change
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 400))
    programs = int(rng.integers(2, 40))
    costs = [np.ones(n), np.rint(rng.exponential(5.0, n)) + 1, rng.random(n),
             np.rint(rng.random(n) * 3) * 1.3 + 2][seed % 4]
    positions = rng.permutation(n) if seed % 3 else np.arange(n)
    ptr, items = work_lists.balanced_lists(costs, programs, "cpu", positions)
    owner = np.empty(n, dtype=np.int64)
    for p, lst in enumerate(_programs(ptr, items)):
        owner[lst] = p
    want = _first_local_schedule_within_slack(costs, programs, positions)
    if want is None:  # no locality schedule close enough: as without positions
        want_ptr, want_items = work_lists.balanced_lists(costs, programs, "cpu")
        assert torch.equal(ptr, want_ptr) and torch.equal(items, want_items)
    else:
        assert np.array_equal(owner, want)


def test_locality_positions_of_the_wrong_shape_raise():
    with pytest.raises(ValueError, match="positions"):
        work_lists.balanced_lists(np.ones(10), 2, "cpu", np.arange(9))


@pytest.mark.parametrize("fn", [lambda n, p: work_lists.snake_lists(n, p, "cpu"),
                                lambda n, p: work_lists.balanced_lists(np.ones(n), p, "cpu")])
@pytest.mark.parametrize("n_programs", [0, 11])
def test_program_counts_outside_one_to_items_raise(fn, n_programs):
    with pytest.raises(ValueError, match="n_programs"):
        fn(10, n_programs)


def _costs_by_hand(bm, batch, kv_heads, group):
    """Item costs from the dense tile classes: item t = rank t // (batch * kv_heads) of k_order."""
    tiles = bm.to_dense()  # (batch, heads, Tq, Tk): 0 empty, 1 partial, 2 full
    n_bk = batch * kv_heads
    out = []
    for t in range(n_bk * bm.n_k_tiles):
        rank, bk = divmod(t, n_bk)
        b, kvh = divmod(bk, kv_heads)
        row = (b % bm.batch) * bm.heads + (kvh * group) % bm.heads
        kt = int(bm.k_order[row, rank])
        cost = flash_bwd_sm90._ITEM_COST
        for h in range(kvh * group, (kvh + 1) * group):
            col = tiles[b % bm.batch, h % bm.heads, :, kt]
            cost += (flash_bwd_sm90._FULL_COST * int((col == 2).sum())
                     + flash_bwd_sm90._PARTIAL_COST * int((col == 1).sum()))
        out.append(cost)
    return np.array(out)


@pytest.mark.parametrize("case", ["shared", "per_batch", "per_head_gqa"])
def test_item_costs_count_each_items_tiles(case):
    lq, lk = 700, 900
    if case == "shared":
        mask, batch, kv_heads, group = ma.documents([300, 5, 595]), 2, 2, 1
    elif case == "per_batch":
        valid = torch.ones(3, lk, dtype=torch.bool)
        valid[1, 400:] = False
        mask, batch, kv_heads, group = ma.causal() & ma.padding(valid), 3, 2, 2
    else:  # a different mask per query head, 4 query heads on each of 2 KV heads
        g = torch.Generator().manual_seed(0)
        mask = ma.dense(torch.rand(1, 8, lq, lk, generator=g) < torch.linspace(0.0, 0.02, 8)[:, None, None])
        batch, kv_heads, group = 1, 2, 4
    bm = ma.compile_mask(mask, lq, lk)
    got = flash_bwd_sm90.item_costs(bm, batch, kv_heads, group, *map_strides(bm))
    np.testing.assert_allclose(got, _costs_by_hand(bm, batch, kv_heads, group))


@pytest.mark.parametrize("case", ["shared", "per_head_gqa"])
def test_item_positions_order_items_by_head_then_key_tile(case):
    if case == "shared":
        mask, batch, kv_heads, group = ma.documents([300, 5, 395]), 2, 2, 1
    else:
        g = torch.Generator().manual_seed(1)
        mask = ma.dense(torch.rand(1, 8, 700, 700, generator=g) < 0.01)
        batch, kv_heads, group = 1, 2, 4
    bm = ma.compile_mask(mask, 700, 700)
    pos = flash_bwd_sm90.item_positions(bm, batch, kv_heads, group, *map_strides(bm))
    n_bk, n_kt = batch * kv_heads, bm.n_k_tiles
    assert sorted(pos.tolist()) == list(range(n_bk * n_kt))
    for t in range(n_bk * n_kt):  # item t: rank t // n_bk of k_order for (b, KV head) t % n_bk
        rank, bk = divmod(t, n_bk)
        b, kvh = divmod(bk, kv_heads)
        kt = int(bm.k_order[(b % bm.batch) * bm.heads + (kvh * group) % bm.heads, rank])
        assert pos[t] == bk * n_kt + kt


def test_program_lists_are_balanced_once_and_kept_on_the_map():
    bm = ma.compile_mask(families.mask("documents", 8192), 8192, 8192)
    first = flash_bwd_sm90.program_lists(bm, 1, 16, 1, 0, 0, 132)
    assert flash_bwd_sm90.program_lists(bm, 1, 16, 1, 0, 0, 132) is first
    costs = flash_bwd_sm90.item_costs(bm, 1, 16, 1, 0, 0)
    loads = [costs[lst].sum() for lst in _programs(*first)]
    snake = [costs[lst].sum() for lst in _snake_reference(costs.size, 132)]
    # the 8k documents map: the snake's busiest program has ~13% more than the mean, LPT ~1%, the
    # locality lists (taken here) ~2.5%
    assert max(loads) / np.mean(loads) < 1.03 < max(snake) / np.mean(snake)
    # one program per item: item t on program t (nothing read back)
    ptr, items = flash_bwd_sm90.program_lists(bm, 1, 16, 1, 0, 0, 1024)
    assert torch.equal(items, torch.arange(1024, dtype=torch.int32)) and ptr.tolist() == list(range(1025))
