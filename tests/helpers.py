"""Shared test helpers.

* Written-out definitions of every mask family, evaluated with plain Python loops over
  ``(i, j)`` (independent of the library's tensor code).
* ``reconstruct`` / ``check_block_map``: rebuild the element mask from a ``BlockMap``
  (unpacking partial-tile bitmaps, filling full tiles) and check every invariant of the format.
* Hypothesis strategies for random masks of every family and random compositions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from hypothesis import strategies as st

import maskattn as ma

EMPTY, PARTIAL, FULL = 0, 1, 2


# ---------------------------------------------------------------------------------------
# Written-out definitions (double loops). ``rule(b, h, i, j)`` on absolute positions.
# ---------------------------------------------------------------------------------------
def loop_mask(rule, q_len, kv_len, q_offset=None, batch=1, heads=1) -> torch.Tensor:
    """(batch, heads, q_len, kv_len) bool from ``rule(b, h, i, j)``; row r is i = q_offset + r."""
    if q_offset is None:
        q_offset = kv_len - q_len
    out = []
    for b in range(batch):
        per_head = []
        for h in range(heads):
            rows = []
            for r in range(q_len):
                i = q_offset + r
                rows.append([bool(rule(b, h, i, j)) for j in range(kv_len)])
            per_head.append(rows)
        out.append(per_head)
    return torch.tensor(out, dtype=torch.bool).view(batch, heads, q_len, kv_len)


def causal_rule(b, h, i, j):
    return j <= i


def window_rule(left, right):
    return lambda b, h, i, j: i - left <= j <= i + right


def longformer_rule(window, global_sets):
    """``global_sets``: one Python set of global positions per batch row."""
    def rule(b, h, i, j):
        g = global_sets[b if len(global_sets) > 1 else 0]
        return abs(i - j) <= window or i in g or j in g
    return rule


def doc_ids_from_lengths(lengths):
    """One list of document ids per batch row from a list of lists of lengths."""
    rows = []
    for row in lengths:
        ids = []
        for d, n in enumerate(row):
            ids += [d] * n
        rows.append(ids)
    return rows


def documents_rule(doc_rows, causal=True):
    """``doc_rows``: per batch row, the document id of every position 0..L-1."""
    def rule(b, h, i, j):
        ids = doc_rows[b if len(doc_rows) > 1 else 0]
        if not (0 <= i < len(ids) and 0 <= j < len(ids)):
            return False  # a position outside the sequence belongs to no document
        if causal and j > i:
            return False
        return ids[i] == ids[j]
    return rule


def tree_rule(parents, prefix=0):
    """Prefix positions are causal among themselves and seen by every node; node t
    (position prefix + t) sees itself and its ancestors. Defined for 0 <= j < prefix + n and
    query positions i < prefix + n (negative positions see nothing)."""
    n = len(parents)

    def rule(b, h, i, j):
        if not (0 <= j < prefix + n) or i < 0:
            return False
        assert i < prefix + n, "tree_rule is only defined for query positions < prefix + n"
        if i < prefix:
            return j <= i
        if j < prefix:
            return True
        t, a = i - prefix, j - prefix
        while t != -1:
            if t == a:
                return True
            t = parents[t]
        return False
    return rule


def prefix_lm_rule(prefix_lens):
    """``prefix_lens``: one prefix length per batch row (or a single one)."""
    def rule(b, h, i, j):
        p = prefix_lens[b if len(prefix_lens) > 1 else 0]
        return j < p or j <= i
    return rule


def padding_rule(valid_rows):
    def rule(b, h, i, j):
        return bool(valid_rows[b][j])
    return rule


def full_rule(b, h, i, j):
    return True


def loop_dense(m: torch.Tensor) -> torch.Tensor:
    """Element-by-element copy of a (B, H, Lq, Lk) 0/1 tensor, indexed by (row, column)."""
    rows = m.tolist()
    out = [[[[bool(x) for x in row] for row in head] for head in bat] for bat in rows]
    return torch.tensor(out, dtype=torch.bool).view(m.shape)


# ---------------------------------------------------------------------------------------
# BlockMap reconstruction and invariants
# ---------------------------------------------------------------------------------------
def _rows_of(ptr: torch.Tensor) -> torch.Tensor:
    n = ptr.numel() - 1
    return torch.repeat_interleave(torch.arange(n), ptr.long().diff())


def reconstruct(bm) -> tuple[torch.Tensor, torch.Tensor]:
    """From the row view of ``bm`` alone: (elements (B, H, Tq*block_q, Tk*block_k) bool,
    tile classes (B, H, Tq, Tk) int8). Partial tiles are unpacked bit by bit (bit c % 32 of
    word [p, r, c // 32]); full tiles are filled with True."""
    bm = bm.to("cpu")
    nb, nh, tq, tk, bq, bk = bm.batch, bm.heads, bm.n_q_tiles, bm.n_k_tiles, bm.block_q, bm.block_k
    n_rows = nb * nh * tq
    cls = torch.zeros(n_rows, tk, dtype=torch.int8)
    elem = torch.zeros(n_rows, tk, bq, bk, dtype=torch.bool)

    full_rows = _rows_of(bm.full_ptr)
    full_idx = bm.full_idx.long()
    assert full_idx.numel() == 0 or (0 <= int(full_idx.min()) and int(full_idx.max()) < tk)
    key = full_rows * tk + full_idx
    assert key.unique().numel() == key.numel(), "a full tile is listed twice"
    cls[full_rows, full_idx] = FULL
    elem[full_rows, full_idx] = True

    part_rows = _rows_of(bm.part_ptr)
    part_idx = bm.part_idx.long()
    assert part_idx.numel() == 0 or (0 <= int(part_idx.min()) and int(part_idx.max()) < tk)
    key = part_rows * tk + part_idx
    assert key.unique().numel() == key.numel(), "a partial tile is listed twice"
    assert bool((cls[part_rows, part_idx] == EMPTY).all()), "a tile is listed as both full and partial"
    cls[part_rows, part_idx] = PARTIAL
    assert bm.bitmaps.shape == (part_idx.numel(), bq, bk // 32) and bm.bitmaps.dtype == torch.int32
    shifts = torch.arange(32)
    bits = ((bm.bitmaps.long()[..., None] >> shifts) & 1).bool()  # (P, bq, bk // 32, 32)
    elem[part_rows, part_idx] = bits.reshape(-1, bq, bk)  # column c = 32 * (c // 32) + c % 32

    elem = elem.view(nb, nh, tq, tk, bq, bk).permute(0, 1, 2, 4, 3, 5).reshape(nb, nh, tq * bq, tk * bk)
    return elem, cls.view(nb, nh, tq, tk)


def check_block_map(bm, mat: torch.Tensor) -> None:
    """Every invariant of the BlockMap format, against ``mat = mask.materialize(...)``."""
    lq, lk, bq, bk = bm.q_len, bm.kv_len, bm.block_q, bm.block_k
    nb, nh, tq, tk = bm.batch, bm.heads, bm.n_q_tiles, bm.n_k_tiles
    assert tuple(mat.shape) == (nb, nh, lq, lk)
    assert tq == -(-lq // bq) and tk == -(-lk // bk)
    for name in ("full_ptr", "full_idx", "part_ptr", "part_idx", "t_full_ptr", "t_full_idx", "t_part_ptr",
                 "t_part_idx", "t_part_slot", "q_order", "k_order"):
        assert getattr(bm, name).dtype == torch.int32, name
    n_rows, n_cols = nb * nh * tq, nb * nh * tk
    for ptr, n in ((bm.full_ptr, n_rows), (bm.part_ptr, n_rows), (bm.t_full_ptr, n_cols), (bm.t_part_ptr, n_cols)):
        assert ptr.shape == (n + 1,) and int(ptr[0]) == 0 and bool((ptr.diff() >= 0).all())
    assert int(bm.full_ptr[-1]) == bm.full_idx.numel() and int(bm.part_ptr[-1]) == bm.part_idx.numel()
    # host statistics: exact; 0 (unknown) for one-query-tile maps (built without host syncs)
    row_tiles = bm.full_ptr.diff() + bm.part_ptr.diff()
    col_tiles = bm.t_full_ptr.diff() + bm.t_part_ptr.diff()
    exact = (int(row_tiles.max()), int(col_tiles.max()), int(row_tiles.sum())) if tq > 1 else (0, 0, 0)
    assert (bm.max_row_tiles, bm.max_col_tiles, bm.nonempty_tiles) == exact

    elem, cls = reconstruct(bm)
    # elements: exactly the materialized mask, nothing outside [0, Lq) x [0, Lk)
    assert torch.equal(elem[:, :, :lq, :lk], mat), "reconstructed element mask != materialize()"
    assert not bool(elem[:, :, lq:, :].any()), "bits set in rows >= q_len"
    assert not bool(elem[:, :, :, lk:].any()), "bits set in columns >= kv_len"

    # tile classes: tight and consistent with the elements
    padded = torch.zeros(nb, nh, tq * bq, tk * bk, dtype=torch.bool)
    padded[:, :, :lq, :lk] = mat
    inside = torch.zeros(tq * bq, tk * bk, dtype=torch.bool)
    inside[:lq, :lk] = True
    n_true = padded.view(nb, nh, tq, bq, tk, bk).sum((3, 5))
    n_inside = inside.view(tq, bq, tk, bk).sum((1, 3))
    sticks_out = n_inside < bq * bk
    is_full, is_part, is_empty = cls == FULL, cls == PARTIAL, cls == EMPTY
    assert bool((n_true[is_full] == bq * bk).all()), "a FULL tile has a disallowed or out-of-range element"
    assert not bool((is_full & sticks_out).any()), "a FULL tile sticks out past Lq/Lk"
    assert bool((n_true[is_empty] == 0).all()), "an EMPTY tile has an allowed element"
    mixed = (n_true > 0) & ((n_true < n_inside) | sticks_out)
    assert bool(mixed[is_part].all()), "a PARTIAL tile is all-empty, or all-allowed without sticking out"

    # column view: exact transpose of the row view
    def keys(rows, idx, row_is_q):
        bh, t = rows // (tq if row_is_q else tk), rows % (tq if row_is_q else tk)
        qt, kt = (t, idx) if row_is_q else (idx, t)
        return (bh * tq + qt) * tk + kt

    row_full = keys(_rows_of(bm.full_ptr), bm.full_idx.long(), True)
    col_full = keys(_rows_of(bm.t_full_ptr), bm.t_full_idx.long(), False)
    assert torch.equal(row_full.sort().values, col_full.sort().values), "t_full_* is not the transpose of full_*"
    row_part = keys(_rows_of(bm.part_ptr), bm.part_idx.long(), True)
    col_part = keys(_rows_of(bm.t_part_ptr), bm.t_part_idx.long(), False)
    slot = bm.t_part_slot.long()
    assert torch.equal(slot.sort().values, torch.arange(row_part.numel())), "t_part_slot is not a permutation"
    assert torch.equal(row_part[slot], col_part), "t_part_slot does not point at the same tile"

    # work orders: permutations; tile rows/columns holding work come before idle ones
    for order, count, t in ((bm.q_order, (cls != EMPTY).sum(3), tq), (bm.k_order, (cls != EMPTY).sum(2), tk)):
        assert order.shape == (nb * nh, t)
        assert torch.equal(order.long().sort(1).values, torch.arange(t).expand(nb * nh, t))
        busy = torch.gather(count.reshape(nb * nh, t), 1, order.long()) > 0
        assert bool((busy[:, :-1].int() >= busy[:, 1:].int()).all()), "an idle tile row is scheduled before a busy one"

    # statistics and the library's own dense view
    assert bm.num_allowed.dtype == torch.int64 and bm.num_allowed.shape == (nb, nh)
    assert torch.equal(bm.num_allowed.cpu(), mat.sum((2, 3))), "num_allowed != materialize().sum()"
    assert torch.equal(bm.to_dense().cpu(), cls)


def assert_maps_equal(x, y):
    """Two BlockMaps hold the same fields (the mask repr aside)."""
    for name in ("q_len", "kv_len", "q_offset", "block_q", "block_k", "batch", "heads", "full_ptr", "full_idx",
                 "part_ptr", "part_idx", "bitmaps", "t_full_ptr", "t_full_idx", "t_part_ptr", "t_part_idx",
                 "t_part_slot", "q_order", "k_order", "num_allowed"):
        u, v = getattr(x, name), getattr(y, name)
        assert (torch.equal(u, v) if isinstance(u, torch.Tensor) else u == v), name


def compile_and_check(mask, q_len, kv_len, q_offset=None, block_q=32, block_k=32):
    bm = ma.compile_mask(mask, q_len, kv_len, q_offset=q_offset, block_q=block_q, block_k=block_k)
    mat = mask.materialize(q_len, kv_len, q_offset=q_offset)
    check_block_map(bm, mat)
    return bm, mat


# ---------------------------------------------------------------------------------------
# Hypothesis strategies
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ctx:
    """What every leaf of one random mask must agree on."""
    q_len: int
    kv_len: int
    batch: int  # per-batch tensors have this many rows (1 = shared)
    heads: int  # dense masks with a head dim have this many heads


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


seeds = st.integers(0, 2**31 - 1)
densities = st.sampled_from([0.0, 0.02, 0.3, 0.5, 0.7, 0.98, 1.0])


def random_parents(n: int, seed: int, style: str) -> list[int]:
    """Random trees: "rollout" (depth-first numbering, as the benchmark family in docs/semantics.md: continue the
    current branch, sometimes branch off a random ancestor on the current path), "chain" (mostly
    continue the previous node), "bfs" (breadth-first numbering of a binary tree), "random"."""
    rng = np.random.default_rng(seed)
    parents, path = [], []
    branch_p = float(rng.choice([0.01, 0.05, 0.2]))
    for t in range(n):
        if t == 0:
            parents.append(-1)
        elif style == "rollout":
            if rng.random() < branch_p:  # branch off an ancestor on the current path (or a new root)
                k = int(rng.integers(0, len(path) + 1))
                path = path[:k]
            parents.append(path[-1] if path else -1)
        elif style == "chain":
            parents.append(t - 1 if rng.random() < 0.8 else int(rng.integers(-1, t)))
        elif style == "bfs":
            parents.append((t - 1) // 2)
        else:
            parents.append(int(rng.integers(-1, t)))
        path.append(t)
    return parents


TREE_STYLES = ["rollout", "chain", "bfs", "random"]


@st.composite
def band_masks(draw, ctx: Ctx):
    kind = draw(st.sampled_from(["causal", "window", "full"]))
    if kind == "causal":
        return ma.causal()
    if kind == "full":
        return ma.full()
    small = st.one_of(st.integers(0, 40), st.integers(0, 350))
    return ma.sliding_window(draw(small), draw(st.sampled_from([0, 0, 1, 5, 33, 200])))


@st.composite
def longformer_masks(draw, ctx: Ctx):
    window = draw(st.one_of(st.integers(0, 8), st.integers(0, 80)))
    kind = draw(st.sampled_from(["list", "tensor", "bool1", "boolB"]))
    if kind in ("list", "tensor"):
        pos = draw(st.lists(st.integers(0, ctx.kv_len - 1), max_size=8))
        g = pos if kind == "list" else torch.tensor(pos, dtype=torch.int64)
    else:
        rows = 1 if kind == "bool1" else ctx.batch
        p = draw(st.sampled_from([0.0, 0.05, 0.3]))
        g = torch.rand(rows, ctx.kv_len, generator=_gen(draw(seeds))) < p
        g = g[0] if kind == "bool1" else g
    return ma.longformer(window, g)


def _split(total: int, n: int, rng: np.random.Generator) -> list[int]:
    cuts = np.sort(rng.integers(0, total + 1, size=n - 1))
    return np.diff(np.r_[0, cuts, total]).astype(int).tolist()


@st.composite
def documents_masks(draw, ctx: Ctx):
    causal = draw(st.booleans())
    kind = draw(st.sampled_from(["list", "batched", "doc_ids"]))
    rng = np.random.default_rng(draw(seeds))
    if kind == "list":
        lengths = _split(ctx.kv_len, draw(st.integers(1, 8)), rng)
        return ma.documents(lengths, causal=causal)
    if kind == "batched":  # (B, n) with rows ending in zero lengths
        n = draw(st.integers(1, 8))
        rows = []
        for _ in range(ctx.batch):
            used = int(rng.integers(1, n + 1))
            rows.append(_split(ctx.kv_len, used, rng) + [0] * (n - used))
        return ma.documents(torch.tensor(rows), causal=causal)
    rows = ctx.batch if draw(st.booleans()) else 1
    low = draw(st.sampled_from([0, 0, -2]))  # ids may be negative (e.g. -1 for padding tokens)
    ids = torch.randint(low, low + draw(st.integers(1, 5)), (rows, ctx.kv_len), generator=_gen(draw(seeds)))
    if draw(st.booleans()):  # sorted ids, as packing produces
        ids = ids.sort(-1).values
    return ma.documents(doc_ids=ids if rows > 1 or draw(st.booleans()) else ids[0], causal=causal)


@st.composite
def tree_masks(draw, ctx: Ctx):
    prefix = draw(st.one_of(st.just(0), st.integers(0, ctx.kv_len - 1)))
    n = ctx.kv_len - prefix
    parents = random_parents(n, draw(seeds), draw(st.sampled_from(TREE_STYLES)))
    return ma.tree(parents, prefix=prefix)


@st.composite
def prefix_lm_masks(draw, ctx: Ctx):
    if draw(st.booleans()):
        return ma.prefix_lm(draw(st.integers(0, ctx.kv_len + 3)))
    return ma.prefix_lm(torch.tensor(draw(st.lists(st.integers(0, ctx.kv_len + 3), min_size=ctx.batch,
                                                   max_size=ctx.batch))))


@st.composite
def padding_masks(draw, ctx: Ctx):
    g = _gen(draw(seeds))
    if draw(st.booleans()):  # right padding, as tokenizers produce
        n = torch.randint(0, ctx.kv_len + 1, (ctx.batch, 1), generator=g)
        valid = torch.arange(ctx.kv_len)[None] < n
    else:
        valid = torch.rand(ctx.batch, ctx.kv_len, generator=g) < draw(densities)
    return ma.padding(valid.int() if draw(st.booleans()) else valid)


@st.composite
def dense_masks(draw, ctx: Ctx):
    shape = draw(st.sampled_from([(ctx.q_len, ctx.kv_len), (ctx.batch, ctx.q_len, ctx.kv_len),
                                  (ctx.batch, ctx.heads, ctx.q_len, ctx.kv_len)]))
    m = torch.rand(shape, generator=_gen(draw(seeds))) < draw(densities)
    return ma.dense(m)


LEAVES = [band_masks, longformer_masks, documents_masks, tree_masks, prefix_lm_masks, padding_masks, dense_masks]


@st.composite
def leaf_masks(draw, ctx: Ctx):
    return draw(draw(st.sampled_from(LEAVES))(ctx))


@st.composite
def composed_masks(draw, ctx: Ctx, depth: int = 3):
    """A leaf, or ``&`` / ``|`` / ``~`` of random masks, nested up to ``depth``."""
    op = draw(st.sampled_from(["leaf", "&", "|", "~"])) if depth > 0 else "leaf"
    if op == "leaf":
        return draw(leaf_masks(ctx))
    a = draw(composed_masks(ctx, depth - 1))
    if op == "~":
        return ~a
    b = draw(composed_masks(ctx, depth - 1))
    return a & b if op == "&" else a | b


lengths = st.one_of(st.integers(1, 300), st.sampled_from([1, 2, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 257]))


@dataclass
class Case:
    mask: ma.Mask
    q_len: int
    kv_len: int
    q_offset: int | None
    block_q: int
    block_k: int


@st.composite
def contexts(draw, max_len=None):
    ln = lengths if max_len is None else st.integers(1, max_len)
    q_len, kv_len = draw(ln), draw(ln)
    return Ctx(q_len, kv_len, draw(st.sampled_from([1, 2, 3])), draw(st.sampled_from([1, 2])))


@st.composite
def q_offsets(draw, ctx: Ctx):
    return draw(st.one_of(st.none(), st.integers(-ctx.q_len - 40, ctx.kv_len + 40), st.sampled_from([0, -1, 1])))


@st.composite
def cases(draw, depth: int = 3, leaves=None):
    ctx = draw(contexts())
    mask = draw(composed_masks(ctx, depth)) if leaves is None else draw(draw(st.sampled_from(leaves))(ctx))
    return Case(mask, ctx.q_len, ctx.kv_len, draw(q_offsets(ctx)), draw(st.sampled_from([16, 32, 64])),
                draw(st.sampled_from([32, 64])))


def assert_materialize_matches(mask, rule, q_len, kv_len, q_offset=None, batch=1, heads=1):
    """``mask.materialize`` == the double loop of ``rule``, shape (batch, heads, Lq, Lk) included."""
    got = mask.materialize(q_len, kv_len, q_offset=q_offset)
    want = loop_mask(rule, q_len, kv_len, q_offset, batch, heads)
    assert got.dtype == torch.bool
    assert tuple(got.shape) == tuple(want.shape)
    assert torch.equal(got, want), f"{mask!r} at q_len={q_len}, kv_len={kv_len}, q_offset={q_offset}"
    return got


# (q_len, kv_len, q_offset): square, q_len < kv_len and q_len > kv_len with the default
# bottom-right alignment, and explicit offsets (zero, inside, negative, past the keys)
LENGTH_CASES = [(1, 1, None), (12, 12, None), (5, 20, None), (20, 7, None), (9, 20, 0), (9, 20, 4),
                (9, 20, -4), (9, 20, 17), (33, 31, None), (16, 40, 30)]
