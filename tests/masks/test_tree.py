"""tree(parents, prefix) against its written-out definition (ancestor walk)."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import maskattn as ma
from helpers import TREE_STYLES, assert_materialize_matches, random_parents, tree_rule

BFS = [-1, 0, 0, 1, 1, 2, 2]          # breadth-first numbering: siblings before grandchildren
FOREST = [-1, -1, 0, 1, -1, 4, 0, 3]   # several roots, interleaved branches
CHAIN = [-1, 0, 1, 2, 3]
TREES = {"bfs": BFS, "forest": FOREST, "chain": CHAIN, "single": [-1], "star": [-1, 0, 0, 0, 0, 0],
         "late_branch": [-1, 0, 1, 2, 1, 4, 0, 6, 3]}


def _valid_offsets(q_len, kv_len):
    """Query placements whose positions stay below kv_len (where the tree is defined)."""
    return [None] + sorted({0, kv_len - q_len, max(0, kv_len - q_len - 2), -2, -q_len})


@pytest.mark.parametrize("parents", TREES.values(), ids=TREES.keys())
@pytest.mark.parametrize("prefix", [0, 1, 4])
def test_tree_matches_definition(parents, prefix):
    kv_len = prefix + len(parents)
    rule = tree_rule(parents, prefix)
    for q_len in sorted({kv_len, 1, max(1, kv_len - 3), kv_len + 3}):
        for q_offset in _valid_offsets(q_len, kv_len):
            if q_offset is not None and q_offset + q_len > kv_len:
                continue
            assert_materialize_matches(ma.tree(parents, prefix=prefix), rule, q_len, kv_len, q_offset)


def test_bfs_tree_hand_written():
    # node: 0 root; 1, 2 children of 0; 3, 4 of 1; 5, 6 of 2
    m = ma.tree(BFS).materialize(7, 7)[0, 0].int().tolist()
    assert m == [[1, 0, 0, 0, 0, 0, 0],
                 [1, 1, 0, 0, 0, 0, 0],
                 [1, 0, 1, 0, 0, 0, 0],
                 [1, 1, 0, 1, 0, 0, 0],
                 [1, 1, 0, 0, 1, 0, 0],
                 [1, 0, 1, 0, 0, 1, 0],
                 [1, 0, 1, 0, 0, 0, 1]]


def test_prefix_is_causal_and_seen_by_every_node():
    m = ma.tree([-1, -1], prefix=3).materialize(5, 5)[0, 0].int().tolist()
    assert m == [[1, 0, 0, 0, 0],
                 [1, 1, 0, 0, 0],
                 [1, 1, 1, 0, 0],
                 [1, 1, 1, 1, 0],
                 [1, 1, 1, 0, 1]]
    # decoding the tree against a cached prefix: only the node rows
    m = ma.tree(BFS, prefix=3).materialize(7, 10)[0, 0]
    assert bool(m[:, :3].all())


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 30), prefix=st.integers(0, 10), style=st.sampled_from(TREE_STYLES),
       seed=st.integers(0, 10**6), data=st.data())
def test_random_trees(n, prefix, style, seed, data):
    parents = random_parents(n, seed, style)
    kv_len = prefix + n
    q_len = data.draw(st.integers(1, kv_len + 5))
    q_offset = data.draw(st.one_of(st.none(), st.integers(-q_len - 3, kv_len - q_len)))
    if q_offset is None and q_len > kv_len:
        q_offset = kv_len - q_len
    assert_materialize_matches(ma.tree(parents, prefix=prefix), tree_rule(parents, prefix), q_len, kv_len, q_offset)


def test_permuted_numbering_gives_the_same_ancestry():
    # the same tree numbered depth-first and breadth-first: ancestry pairs agree
    dfs = [-1, 0, 1, 1, 0, 4, 4]     # 0 -> (1 -> 2, 3), (4 -> 5, 6)
    bfs_of_dfs = [0, 1, 4, 2, 3, 5, 6]  # bfs node t is dfs node bfs_of_dfs[t]
    a = ma.tree(dfs).materialize(7, 7)[0, 0]
    b = ma.tree(BFS).materialize(7, 7)[0, 0]
    idx = torch.tensor(bfs_of_dfs)
    assert torch.equal(a[idx][:, idx], b)


def test_deep_and_wide_trees_are_exact():
    rng = np.random.default_rng(0)
    deep = [-1] + list(range(299))
    wide = [-1] + [0] * 299
    rand = [-1] + [int(rng.integers(-1, t)) for t in range(1, 300)]
    for parents in (deep, wide, rand):
        m = ma.tree(parents).materialize(300, 300)[0, 0]
        # node t sees exactly its depth + 1 nodes (itself and its ancestors)
        depth = [0] * 300
        for t in range(1, 300):
            depth[t] = depth[parents[t]] + 1 if parents[t] >= 0 else 0
        assert m.sum(1).tolist() == [d + 1 for d in depth]
        assert bool(m.diagonal().all()) and not bool(m.triu(1).any())


def test_repr():
    assert repr(ma.tree(BFS)) == "tree(parents=<7 nodes>)"
    assert repr(ma.tree(BFS, prefix=5)) == "tree(parents=<7 nodes>, prefix=5)"


@pytest.mark.parametrize("parents,t", [([-1, 1], 1), ([-1, 0, 3, 0], 2), ([0], 0), ([-1, 0, -2], 2),
                                       ([-1, 5], 1)])
def test_bad_parent_raises(parents, t):
    with pytest.raises(ValueError, match=rf"parents\[{t}\]"):
        ma.tree(parents)


@pytest.mark.parametrize("bad", [[], [-1.0, 0.0], torch.tensor([[-1, 0]]), torch.tensor([True, False])])
def test_bad_parents_type_or_shape_raise(bad):
    with pytest.raises((TypeError, ValueError), match="parents"):
        ma.tree(bad)


@pytest.mark.parametrize("prefix,exc", [(-1, ValueError), (1.5, TypeError), ("2", TypeError)])
def test_bad_prefix_raises(prefix, exc):
    with pytest.raises(exc, match="prefix"):
        ma.tree([-1, 0], prefix=prefix)


@pytest.mark.parametrize("kv_len", [6, 8, 20])
def test_kv_len_must_equal_prefix_plus_nodes_at_compile(kv_len):
    mask = ma.tree(BFS, prefix=0)
    with pytest.raises(ValueError, match="kv_len"):
        ma.compile_mask(mask, kv_len, kv_len, block_q=16, block_k=32)
    with pytest.raises(ValueError, match="prefix"):
        ma.compile_mask(ma.tree(BFS, prefix=2), 3, kv_len, block_q=16, block_k=32)
    with pytest.raises(ValueError, match="kv_len"):
        mask.materialize(3, kv_len)
    ma.compile_mask(ma.tree(BFS, prefix=2), 3, 9, block_q=16, block_k=32)
