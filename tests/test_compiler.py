"""compile_mask: the BlockMap is the exact tile reduction of materialize(), and its views."""
import struct

import pytest
import scipy.sparse
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import maskattn as ma
from helpers import (EMPTY, FULL, LEAVES, PARTIAL, assert_maps_equal, cases, check_block_map, compile_and_check,
                     reconstruct)


def _compile_case(case):
    bm = ma.compile_mask(case.mask, case.q_len, case.kv_len, q_offset=case.q_offset,
                         block_q=case.block_q, block_k=case.block_k)
    mat = case.mask.materialize(case.q_len, case.kv_len, q_offset=case.q_offset)
    want_offset = case.kv_len - case.q_len if case.q_offset is None else case.q_offset
    assert (bm.q_len, bm.kv_len, bm.q_offset, bm.block_q, bm.block_k) == (
        case.q_len, case.kv_len, want_offset, case.block_q, case.block_k)
    assert bm.mask_repr == repr(case.mask)
    check_block_map(bm, mat)
    return bm, mat


# ---- random masks ------------------------------------------------------------------------
@pytest.mark.parametrize("family", LEAVES, ids=lambda f: f.__name__)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_every_family_compiles_to_its_tile_reduction(family, data):
    _compile_case(data.draw(cases(leaves=[family])))


@settings(max_examples=60, deadline=None)
@given(case=cases(depth=3))
def test_random_compositions_compile_to_their_tile_reduction(case):
    _compile_case(case)


# ---- hand-picked cases ---------------------------------------------------------------------
SHAPES = [(1, 1, None), (17, 17, None), (63, 65, None), (65, 63, None), (129, 127, None), (100, 300, None),
          (300, 100, None), (64, 64, None), (50, 200, 0), (50, 200, -30), (50, 200, 260), (40, 40, -100)]


@pytest.mark.parametrize("q_len,kv_len,q_offset", SHAPES)
@pytest.mark.parametrize("block_q,block_k", [(16, 32), (32, 32), (64, 64), (16, 64)])
def test_causal_and_window_shapes(q_len, kv_len, q_offset, block_q, block_k):
    for mask in (ma.causal(), ma.sliding_window(20, 3), ma.causal() & ma.sliding_window(40)):
        bm, mat = compile_and_check(mask, q_len, kv_len, q_offset, block_q, block_k)
        assert bm.q_offset == (kv_len - q_len if q_offset is None else q_offset)


def test_causal_tile_classes_are_exact():
    # 128 x 128 with 32 x 32 tiles: diagonal tiles partial, below full, above empty
    bm, _ = compile_and_check(ma.causal(), 128, 128, block_q=32, block_k=32)
    qt, kt = torch.meshgrid(torch.arange(4), torch.arange(4), indexing="ij")
    want = torch.where(qt > kt, FULL, torch.where(qt == kt, PARTIAL, EMPTY)).to(torch.int8)
    assert torch.equal(bm.to_dense()[0, 0], want)
    assert (bm.n_full, bm.n_partial) == (6, 4)
    assert int(bm.num_allowed) == 128 * 129 // 2


def test_ragged_edge_tiles_are_never_full():
    # every pair allowed, but the last tile row/column sticks out past Lq / Lk
    bm, _ = compile_and_check(ma.full(), 70, 100, block_q=32, block_k=32)
    cls = bm.to_dense()[0, 0]
    assert bool((cls[:2, :3] == FULL).all())
    assert bool((cls[2, :] == PARTIAL).all()) and bool((cls[:, 3] == PARTIAL).all())
    elem, _ = reconstruct(bm)
    assert bool(elem[0, 0, :70, :100].all()) and not bool(elem[0, 0, 70:].any()) and not bool(elem[0, 0, :, 100:].any())


def test_fully_masked_and_all_allowed_dense_masks_demote_to_empty_and_full():
    # dense tile classes are computed from the bits; conservative PARTIAL must not survive
    m = torch.zeros(64, 64, dtype=torch.bool)
    m[:32, :32] = True
    bm, _ = compile_and_check(ma.dense(m), 64, 64, block_q=32, block_k=32)
    assert bm.to_dense()[0, 0].tolist() == [[FULL, EMPTY], [EMPTY, EMPTY]]
    # an OR whose parts are both partial can still be full: causal | ~causal
    bm, _ = compile_and_check(ma.causal() | ~ma.causal(), 64, 64, block_q=32, block_k=32)
    assert bm.n_partial == 0 and bm.n_full == 4
    bm, _ = compile_and_check(ma.causal() & ~ma.causal(), 64, 64, block_q=32, block_k=32)
    assert bm.n_partial == 0 and bm.n_full == 0 and int(bm.num_allowed) == 0


def test_per_batch_and_per_head_maps():
    lens = torch.tensor([[10, 20, 0], [5, 5, 20]])
    valid = torch.arange(30)[None] < torch.tensor([[30], [17]])
    dm = torch.rand(2, 3, 30, 30, generator=torch.Generator().manual_seed(0)) < 0.7
    mask = ma.documents(lens) & ma.padding(valid) & ma.dense(dm)
    bm, mat = compile_and_check(mask, 30, 30, block_q=16, block_k=32)
    assert (bm.batch, bm.heads) == (2, 3)
    assert mat.shape == (2, 3, 30, 30)


# ---- tile classifiers at their boundaries ------------------------------------------------------
# Random cases rarely put a band edge or a prefix end exactly on a tile corner; these sweeps
# cover every alignment of the query tiles against the key tiles, where FULL / EMPTY must flip.
@pytest.mark.parametrize("mask", [ma.causal(), ma.sliding_window(50), ma.sliding_window(0, 50),
                                  ma.sliding_window(20, 30), ma.sliding_window(0)], ids=repr)
def test_band_tile_boundaries(mask):
    for q_offset in range(-16, 33):  # every residue modulo block_k = 32
        compile_and_check(mask, 48, 160, q_offset, block_q=16, block_k=32)


def test_prefix_tile_boundaries():
    lens = torch.arange(0, 133)  # one prefix length per batch row: every position of every key tile
    compile_and_check(ma.prefix_lm(lens), 128, 128, block_q=16, block_k=32)
    for p in range(0, 70):
        compile_and_check(ma.prefix_lm(p), 64, 96, block_q=16, block_k=32)
        compile_and_check(ma.padding(torch.arange(96)[None] < p), 16, 96, block_q=16, block_k=32)


def test_tree_tile_missing_one_pair_is_not_full():
    # nodes 0..46 form a chain except node 47, a child of node 30: query tile 32..47 sees all of
    # key tile 0..31 except the pair (47, 31); its Euler intervals touch (tout[31] == tin[47])
    parents = list(range(-1, 46)) + [30] + list(range(47, 63))
    bm, mat = compile_and_check(ma.tree(parents), 64, 64, block_q=16, block_k=32)
    assert not bool(mat[0, 0, 47, 31]) and int(mat[0, 0, 32:48, :32].sum()) == 16 * 32 - 1
    assert bm.to_dense()[0, 0, 2, 0] == PARTIAL
    chain, _ = compile_and_check(ma.tree(list(range(-1, 63))), 64, 64, block_q=16, block_k=32)
    assert chain.to_dense()[0, 0, 2, 0] == FULL  # without the side branch the tile is full
    for q_offset in range(0, 48):
        compile_and_check(ma.tree(parents), 16, 64, q_offset, block_q=16, block_k=32)


def test_default_tiles():
    mask = ma.documents([100, 57, 143]) & ma.sliding_window(130) | ma.longformer(3, [7])
    bm = ma.compile_mask(mask, 300, 300)
    assert (bm.block_q, bm.block_k, bm.bitmaps.shape[1:]) == (128, 128, (128, 4))
    check_block_map(bm, mask.materialize(300, 300))


def test_partial_tiles_evaluated_in_several_chunks(monkeypatch):
    import maskattn.compiler as compiler

    lens = torch.tensor([[30, 70, 57, 0], [100, 57, 0, 0]])
    valid = torch.rand(2, 157, generator=torch.Generator().manual_seed(0)) < 0.1
    for mask in (ma.documents(lens), ma.tree([-1] + [(t - 1) // 2 for t in range(1, 157)]),
                 ma.sliding_window(9, 4) | ma.padding(valid)):
        whole = ma.compile_mask(mask, 150, 157, block_q=16, block_k=32)
        monkeypatch.setattr(compiler, "_MAX_CHUNK_ELEMENTS", 3 * 16 * 32)  # 3 tiles per chunk
        chunked = ma.compile_mask(mask, 150, 157, block_q=16, block_k=32)
        monkeypatch.undo()
        assert whole.n_partial > 6
        assert_maps_equal(whole, chunked)
        check_block_map(chunked, mask.materialize(150, 157))


@pytest.mark.parametrize("bq,bk", [(16, 32), (64, 128), (128, 256)])
def test_bit_packing_and_counting(bq, bk):
    import maskattn.compiler as compiler

    g = torch.Generator().manual_seed(bq + bk)
    bits = torch.rand(5, bq, bk, generator=g) < torch.tensor([0.0, 0.1, 0.5, 0.97, 1.0]).view(5, 1, 1)
    want = (bits.view(5, bq, bk // 32, 32).long() << torch.arange(32)).sum(-1)
    want = torch.where(want >= 2**31, want - 2**32, want).to(torch.int32)
    assert torch.equal(compiler._pack_bits(bits), want)
    assert torch.equal(compiler._count_true(bits), bits.sum((1, 2)))


def test_compile_syncs_with_the_host_only_for_the_sizes():
    # on a GPU each of these ops waits for the device: compile_mask needs one (the number of
    # candidate tiles) plus one .tolist() (the map's sizes), which dispatch does not see on CPU
    from torch.utils._python_dispatch import TorchDispatchMode

    aten = torch.ops.aten
    syncing = {aten.nonzero.default, aten._local_scalar_dense.default, aten.bincount.default,
               aten.masked_select.default, aten.repeat_interleave.Tensor, aten._unique2.default}

    class Syncs(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.seen = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            bool_index = func in (aten.index.Tensor, aten.index_put_.default) and any(
                t is not None and t.dtype == torch.bool for t in args[1])
            if func in syncing or bool_index:
                self.seen.append(str(func))
            return func(*args, **(kwargs or {}))

    parents = [-1] + [(t - 1) // 2 for t in range(1, 300)]
    masks = [ma.causal(), ma.sliding_window(100), ma.longformer(20, list(range(7))), ma.documents([100, 57, 143]),
             ma.tree(parents), ma.tree(parents[:250], prefix=50), ma.prefix_lm(torch.tensor([30, 70])) & ma.causal()]
    for mask in masks:
        with Syncs() as syncs:
            ma.compile_mask(mask, 300, 300, block_q=32, block_k=32)
        assert syncs.seen == [str(aten.nonzero.default)], (mask, syncs.seen)


def test_batch_sizes_must_agree():
    with pytest.raises(ValueError, match="batch size"):
        ma.documents(torch.tensor([[3, 3], [6, 0]])) & ma.padding(torch.ones(3, 6, dtype=torch.bool))


def test_tree_bfs_order_compiles():
    parents = [-1, 0, 0, 1, 1, 2, 2]
    big = [-1] + [(t - 1) // 3 for t in range(1, 150)]  # BFS numbering of a ternary tree
    compile_and_check(ma.tree(parents, prefix=40), 47, 47, block_q=16, block_k=32)
    compile_and_check(ma.tree(big, prefix=37), 60, 187, block_q=16, block_k=32)
    compile_and_check(ma.tree(big, prefix=37), 187, 187, block_q=32, block_k=64)


# ---- argument checks -----------------------------------------------------------------------
@pytest.mark.parametrize("kw,name", [({"block_q": 24}, "block_q"), ({"block_k": 48}, "block_k"),
                                     ({"block_q": 8}, "block_q"), ({"block_k": 16}, "block_k"),
                                     ({"block_q": 0}, "block_q"), ({"block_k": -32}, "block_k")])
def test_block_sizes_must_be_powers_of_two(kw, name):
    with pytest.raises(ValueError, match=name):
        ma.compile_mask(ma.causal(), 64, 64, **kw)


@pytest.mark.parametrize("kw,name", [({"block_q": 32.0}, "block_q"), ({"block_k": "64"}, "block_k"),
                                     ({"block_q": True}, "block_q")])
def test_block_sizes_must_be_ints(kw, name):
    with pytest.raises(TypeError, match=name):
        ma.compile_mask(ma.causal(), 64, 64, **kw)


@pytest.mark.parametrize("bad", [None, "causal", torch.ones(4, 4, dtype=torch.bool), lambda b, h, q, k: q >= k])
def test_compile_rejects_non_masks(bad):
    with pytest.raises(TypeError, match="mask"):
        ma.compile_mask(bad, 4, 4)


@pytest.mark.parametrize("q_len,kv_len,name", [(0, 4, "q_len"), (4, 0, "kv_len"), (-1, 4, "q_len"), (4.0, 4, "q_len")])
def test_compile_rejects_bad_lengths(q_len, kv_len, name):
    with pytest.raises(ValueError, match=name):
        ma.compile_mask(ma.causal(), q_len, kv_len)


def test_compile_rejects_non_int_q_offset():
    with pytest.raises(TypeError, match="q_offset"):
        ma.compile_mask(ma.causal(), 4, 4, q_offset=1.5)


# ---- BlockMap views --------------------------------------------------------------------------
@pytest.fixture
def window_map():
    mask = ma.causal() & ma.sliding_window(40)
    return mask, ma.compile_mask(mask, 200, 200, block_q=32, block_k=32)


def test_repr_mentions_density_and_counts(window_map):
    mask, bm = window_map
    r = repr(bm)
    n_empty = bm.n_tiles - bm.n_full - bm.n_partial
    assert r.startswith("BlockMap(causal() & sliding_window(40),")
    for part in (f"density={bm.density:.2%}", f"tile_density={bm.tile_density:.2%}", f"full={bm.n_full}",
                 f"partial={bm.n_partial}", f"empty={n_empty}", "Lq=200", "Lk=200", "tile=32x32"):
        assert part in r
    mat = mask.materialize(200, 200)
    assert bm.density == pytest.approx(float(mat.double().mean()))
    assert bm.tile_density == pytest.approx((bm.to_dense() != EMPTY).double().mean().item())


def test_to_dense_shape(window_map):
    _, bm = window_map
    d = bm.to_dense()
    assert d.shape == (1, 1, 7, 7) and d.dtype == torch.int8
    assert set(d.unique().tolist()) <= {EMPTY, PARTIAL, FULL}
    assert int((d == FULL).sum()) == bm.n_full and int((d == PARTIAL).sum()) == bm.n_partial


def test_to_string_contains_mask_repr(window_map):
    mask, bm = window_map
    s = bm.to_string()
    lines = s.splitlines()
    assert repr(mask) in lines[0]
    assert len(lines) == 1 + 7 and all(len(ln) == 7 + 2 for ln in lines[1:])
    assert lines[1] == "|" + "░" + " " * 6 + "|"  # first tile row: only the diagonal tile


def test_to_string_downsamples_large_maps():
    bm = ma.compile_mask(ma.causal(), 300, 300, block_q=16, block_k=32)  # 19 x 10 tiles
    lines = bm.to_string(max_width=5).splitlines()
    assert "causal()" in lines[0] and "1 cell =" in lines[0]
    assert all(len(ln) <= 5 + 2 for ln in lines[1:])


def test_to_scipy_matches_to_dense():
    lens = torch.tensor([[50, 70, 80], [120, 80, 0]])
    bm = ma.compile_mask(ma.documents(lens), 200, 200, block_q=16, block_k=32)
    for b in range(2):
        m = bm.to_scipy(b=b)
        assert scipy.sparse.issparse(m)
        dense = bm.to_dense()[b, 0].numpy()
        assert m.shape == dense.shape
        assert (m.toarray() == dense).all()
        assert sorted(zip(*m.nonzero())) == sorted(zip(*dense.nonzero()))


def test_plot_writes_png(tmp_path, window_map):
    pytest.importorskip("matplotlib")
    _, bm = window_map
    path = tmp_path / "map.png"
    bm.plot(path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 0 and height > 0


def test_to_device_roundtrip(window_map):
    _, bm = window_map
    moved = bm.to("cpu")
    assert moved is not bm and moved.device == torch.device("cpu")
    check_block_map(moved, window_map[0].materialize(200, 200))


def test_plot_has_a_legend(tmp_path, window_map, monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    import matplotlib.figure
    figs = []
    real = matplotlib.figure.Figure.savefig
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, *a, **kw: figs.append(fig) or real(fig, *a, **kw))
    window_map[1].plot(tmp_path / "map.png")
    legend = figs[0].axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["full", "partial", "empty"]


def test_busiest_row_statistics_choose_the_forward_shape(monkeypatch):
    """Longformer's global rows (one query tile against every key tile) outlast the mean work
    per program slot; causal rows do not. On the GPU such maps get two warpgroups per program."""
    from maskattn.kernels import config
    cpu = torch.device("cpu")  # sm_count: 4 stand-in SMs, 2 programs each -> 8 slots
    glob = ma.compile_mask(ma.longformer(16, [0, 1]), 2048, 2048, block_q=64, block_k=64)
    causal = ma.compile_mask(ma.causal(), 2048, 2048, block_q=64, block_k=64)
    assert glob.max_row_tiles == 32 and causal.max_row_tiles == 32
    assert config.is_row_bound(glob.max_row_tiles, glob.nonempty_tiles, 1, cpu, per_sm=2)
    assert not config.is_row_bound(causal.max_row_tiles, causal.nonempty_tiles, 1, cpu, per_sm=2)
    assert not config.is_row_bound(0, 0, 16, cpu, per_sm=2)  # unknown statistics: the default shape
    monkeypatch.setenv("TRITON_INTERPRET", "0")  # the GPU tables, not the interpreter's stand-in
    busy = config.forward_config(128, 128, 128, torch.bfloat16, row_bound=True)
    assert (busy["num_warps"], busy["BLOCK_M"], busy["BLOCK_N"]) == (8, 128, 128)
    assert config.forward_config(128, 128, 128, torch.bfloat16)["num_warps"] == 4
    # the default shape's resident programs give the slots is_row_bound counts
    assert config.programs_per_sm(config.forward_config(128, 128, 128, torch.bfloat16)) == 2
    assert config.forward_config(128, 128, 128, torch.float32, row_bound=True) == config.forward_config(
        128, 128, 128, torch.float32)
