"""Smoke tests of the standard benchmark families (benchmarks/families.py)."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root: maskattn and benchmarks

import maskattn as ma  # noqa: E402
from benchmarks import families as F  # noqa: E402
from maskattn.masks.tree import euler_intervals  # noqa: E402

try:
    from torch.nn.attention.flex_attention import create_block_mask
except Exception:  # noqa: BLE001
    create_block_mask = None

needs_flex = pytest.mark.skipif(create_block_mask is None, reason="torch.nn.attention.flex_attention not importable")


@pytest.mark.parametrize("L", [1, 16, 1000, 1024, 8192, 100_000])
def test_document_lengths_sum_to_L(L):
    lens = F.document_lengths(L)
    assert lens.dtype == np.int64 and int(lens.sum()) == L
    assert (lens[:-1] >= F.DOC_MIN).all() and lens[-1] >= 1
    assert np.array_equal(F.document_lengths(L), lens)  # seeded


def test_document_lengths_are_a_prefix_across_L():
    short, long = F.document_lengths(8192), F.document_lengths(65536)
    assert np.array_equal(short[:-1], long[:len(short) - 1])
    assert 600 < long.mean() < 1500  # mean ~1024 (plus the min-16 floor, minus the trimmed last one)


def _check_depth_first(parents):
    """parents[t] < t and lies on the path root .. t-1 (depth-first numbering)."""
    L = len(parents)
    assert parents[0] == -1 and (parents[1:] >= 0).all() and (parents[1:] < np.arange(1, L)).all()
    path = [0]
    for t in range(1, L):
        p = int(parents[t])
        while path[-1] != p:  # pop to the parent; fails if the parent is not on the current path
            path.pop()
            assert path, f"parent {p} of node {t} is not on the path to node {t - 1}"
        path.append(t)


@pytest.mark.parametrize("p_continue", [F.TREE_CONTINUE, 0.9, 0.5])
def test_tree_parents_valid_depth_first(p_continue):
    parents = F.tree_parents(1024, p_continue=p_continue)
    _check_depth_first(parents)
    n_branch = int((parents[1:] != np.arange(1023)).sum())
    assert (n_branch > 0) == (p_continue < 1)
    tin, tout = euler_intervals(np.asarray(parents))
    assert np.array_equal(tin, np.arange(1024))  # pre-order numbering == node ids
    assert (tout > tin).all() and (tout <= 1024).all()


def test_tree_is_a_prefix_across_L():
    assert np.array_equal(F.tree_parents(8192)[:1024], F.tree_parents(1024))


@pytest.mark.parametrize("name", F.FAMILIES)
def test_family_compiles(name):
    L = 1024
    m = F.mask(name, L)
    bm = ma.compile_mask(m, L, L)
    assert 0 < bm.density < 1 and bm.n_full + bm.n_partial > 0
    dense = m.materialize(L, L)[0, 0]
    assert dense.diagonal().all()  # every family lets a token see itself
    assert int(bm.num_allowed.sum()) == int(dense.sum())


def _mask_mod_dense(mod, L):
    q = torch.arange(L).view(L, 1)
    kv = torch.arange(L).view(1, L)
    zero = torch.zeros((), dtype=torch.int64)
    return mod(zero, zero, q, kv).expand(L, L)


@needs_flex
@pytest.mark.parametrize("L", [256, 2048])
@pytest.mark.parametrize("name", F.FAMILIES)
def test_mask_mod_matches_materialize(name, L):
    want = F.mask(name, L).materialize(L, L)[0, 0]
    got = _mask_mod_dense(F.mask_mod(name, L, "cpu"), L)
    assert torch.equal(got, want)
    # as FlexAttention evaluates it (vmap over q and kv)
    mod = F.mask_mod(name, L, "cpu")
    zero = torch.zeros((), dtype=torch.int64)
    inner = torch.vmap(lambda q, kv: mod(zero, zero, q, kv), in_dims=(None, 0))
    got_v = torch.vmap(inner, in_dims=(0, None))(torch.arange(L), torch.arange(L))
    assert torch.equal(got_v, want)


@needs_flex
@pytest.mark.parametrize("name", F.FAMILIES)
def test_tile_counts_match_create_block_mask(name):
    L = 2048
    bm = ma.compile_mask(F.mask(name, L), L, L)
    fb = create_block_mask(F.mask_mod(name, L, "cpu"), None, None, L, L, device="cpu", BLOCK_SIZE=128)
    assert int(fb.full_kv_num_blocks.sum()) == bm.n_full
    assert int(fb.kv_num_blocks.sum()) == bm.n_partial


def test_multi_document_and_branching_at_2048():
    assert len(F.document_lengths(2048)) >= 2
    p = F.tree_parents(2048)
    assert (p[1:] != np.arange(2047)).any()
