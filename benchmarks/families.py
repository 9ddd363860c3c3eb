"""The five standard benchmark mask families (docs/semantics.md, "Speed measurements").

Each family is given for a sequence length ``L`` (``q_len == kv_len == L``) in two forms:

* ``mask(name, L)``: the maskattn ``Mask`` (CPU tensors; move it with ``.to(device)``);
* ``mask_mod(name, L, device)``: the equivalent FlexAttention ``mask_mod(b, h, q_idx, kv_idx)``,
  closing over tensors on ``device`` (documents: a doc-id tensor; tree: Euler-tour tin/tout).

| name       | mask                                                                      |
|------------|---------------------------------------------------------------------------|
| causal     | ``j <= i``                                                                |
| sliding    | ``sliding_window(1023)``: ``i - 1023 <= j <= i``                           |
| longformer | ``|i - j| <= 256``, global tokens = the first 64 positions (symmetric)      |
| documents  | causal within documents; lengths ~ Exp(mean 1024), min 16, seed 0,        |
|            | the last one trimmed so that they sum to ``L``                            |
| tree       | rollout tree in depth-first order; token ``t`` continues its parent's      |
|            | branch (parent ``t - 1``) with p = 0.995, else hangs off a uniformly drawn |
|            | proper ancestor of ``t - 1`` (seed 0)                                      |

The random draws do not depend on ``L`` beyond their length: the documents of a shorter
``L`` are a prefix of a longer one's (up to the trimmed last one), the tree of a shorter
``L`` is the first ``L`` nodes of a longer one's.

Usage::

    from benchmarks import families
    m = families.mask("documents", 32768)             # maskattn Mask
    mm = families.mask_mod("documents", 32768, "cuda")  # FlexAttention mask_mod
"""
from __future__ import annotations

import bisect
import functools

import numpy as np
import torch

import maskattn as ma
from maskattn.masks.tree import euler_intervals

FAMILIES = ("causal", "sliding", "longformer", "documents", "tree")

SLIDING_LEFT = 1023  # a causal window of 1024 keys
LONGFORMER_WINDOW = 256
LONGFORMER_GLOBAL = 64  # positions 0..63 are global
DOC_MEAN, DOC_MIN = 1024, 16
TREE_CONTINUE = 0.995
SEED = 0
_DOC_CHUNK = 4096  # exponential draws are made in fixed chunks so shorter L give a prefix


# ---- random structure (numpy, cached: the benchmark reuses them across methods) ----------
@functools.lru_cache(maxsize=8)
def document_lengths(L: int, mean: int = DOC_MEAN, min_len: int = DOC_MIN, seed: int = SEED) -> np.ndarray:
    """Document lengths (int64, each >= ``min_len`` except perhaps the trimmed last one) summing to ``L``."""
    rng = np.random.default_rng(seed)
    chunks, total = [], 0
    while total < L:
        x = np.maximum(min_len, np.rint(rng.exponential(mean, _DOC_CHUNK))).astype(np.int64)
        chunks.append(x)
        total += int(x.sum())
    lens = np.concatenate(chunks)
    ends = np.cumsum(lens)
    k = int(np.searchsorted(ends, L))  # first document that reaches L
    lens = lens[:k + 1].copy()
    lens[-1] -= int(ends[k]) - L
    lens.flags.writeable = False
    return lens


@functools.lru_cache(maxsize=8)
def tree_parents(L: int, p_continue: float = TREE_CONTINUE, seed: int = SEED) -> np.ndarray:
    """Parents (int64, ``-1`` for the root 0) of a rollout tree whose nodes are numbered in
    depth-first (pre-)order: every node's parent lies on the path root .. previous node.

    Token ``t`` continues the branch (parent ``t - 1``) with probability ``p_continue``;
    otherwise its parent is a uniformly drawn proper ancestor of ``t - 1`` (the tree
    branches off the current path). The current path is kept as a stack of runs of
    consecutive node ids, so the Python loop runs over branch events only (about
    ``(1 - p_continue) * L``), each O(log depth + runs popped): no O(L^2) step."""
    rng = np.random.default_rng(seed)
    draws = rng.random((L, 2))  # one row per token, so a shorter L gives a prefix of the tree
    branch, u = draws[:, 0] >= p_continue, draws[:, 1]
    parents = np.arange(-1, L - 1, dtype=np.int64)
    run_start, run_depth = [0], [0]  # run k: nodes run_start[k], run_start[k]+1, ... at depths run_depth[k], ...
    for t in np.nonzero(branch[1:])[0] + 1:
        t = int(t)
        depth_prev = run_depth[-1] + (t - 1 - run_start[-1])  # depth of node t - 1
        if depth_prev == 0:  # t - 1 is the root: no proper ancestor, keep continuing
            continue
        d = min(int(u[t] * depth_prev), depth_prev - 1)  # depth of the new parent, uniform in [0, depth_prev)
        k = bisect.bisect_right(run_depth, d) - 1
        parents[t] = run_start[k] + (d - run_depth[k])
        del run_start[k + 1:], run_depth[k + 1:]
        run_start.append(t)
        run_depth.append(d + 1)
    parents.flags.writeable = False
    return parents


@functools.lru_cache(maxsize=8)
def tree_intervals(L: int) -> tuple[np.ndarray, np.ndarray]:
    """Euler-tour ``(tin, tout)`` of ``tree_parents(L)``: ``a`` is an ancestor-or-self of ``d``
    iff ``tin[a] <= tin[d] < tout[a]``. (Depth-first numbering makes ``tin == arange(L)``.)"""
    return euler_intervals(np.asarray(tree_parents(L)))


# ---- maskattn masks ----------------------------------------------------------------------
def mask(name: str, L: int) -> ma.Mask:
    """The maskattn mask of family ``name`` for ``q_len == kv_len == L`` (tensors on CPU)."""
    if name == "causal":
        return ma.causal()
    if name == "sliding":
        return ma.sliding_window(SLIDING_LEFT)
    if name == "longformer":
        return ma.longformer(LONGFORMER_WINDOW, list(range(min(LONGFORMER_GLOBAL, L))))
    if name == "documents":
        return ma.documents(torch.from_numpy(document_lengths(L).copy()))
    if name == "tree":
        return ma.tree(torch.from_numpy(tree_parents(L).copy()))
    raise ValueError(f"unknown family {name!r}; expected one of {FAMILIES}")


# ---- FlexAttention mask_mods -------------------------------------------------------------
def mask_mod(name: str, L: int, device="cpu"):
    """FlexAttention ``mask_mod(b, h, q_idx, kv_idx) -> bool`` of family ``name`` (``q_idx``
    and ``kv_idx`` are absolute positions since ``q_len == kv_len``); captured tensors live on ``device``."""
    device = torch.device(device)
    if name == "causal":
        def causal_mod(b, h, q_idx, kv_idx):
            return kv_idx <= q_idx
        return causal_mod
    if name == "sliding":
        def sliding_mod(b, h, q_idx, kv_idx):
            return (kv_idx <= q_idx) & (q_idx - kv_idx <= SLIDING_LEFT)
        return sliding_mod
    if name == "longformer":
        def longformer_mod(b, h, q_idx, kv_idx):
            band = (q_idx - kv_idx <= LONGFORMER_WINDOW) & (kv_idx - q_idx <= LONGFORMER_WINDOW)
            return band | (q_idx < LONGFORMER_GLOBAL) | (kv_idx < LONGFORMER_GLOBAL)
        return longformer_mod
    if name == "documents":
        lens = torch.from_numpy(document_lengths(L).copy())
        doc_id = torch.repeat_interleave(torch.arange(len(lens)), lens).to(device)  # (L,) int64

        def documents_mod(b, h, q_idx, kv_idx):
            return (doc_id[q_idx] == doc_id[kv_idx]) & (kv_idx <= q_idx)
        return documents_mod
    if name == "tree":
        tin_np, tout_np = tree_intervals(L)
        tin = torch.from_numpy(tin_np).to(device)
        tout = torch.from_numpy(tout_np).to(device)

        def tree_mod(b, h, q_idx, kv_idx):  # kv node is an ancestor-or-self of the q node
            return (tin[kv_idx] <= tin[q_idx]) & (tin[q_idx] < tout[kv_idx])
        return tree_mod
    raise ValueError(f"unknown family {name!r}; expected one of {FAMILIES}")


def describe(name: str, L: int) -> str:
    """One line about the family's random structure at length ``L`` (for tables)."""
    if name == "documents":
        lens = document_lengths(L)
        return f"{len(lens)} documents, mean {lens.mean():.0f}"
    if name == "tree":
        p = tree_parents(L)
        return f"{int((p[1:] != np.arange(L - 1)).sum())} branch points"
    return ""
