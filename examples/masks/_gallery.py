"""Shared by the gallery scripts: check a mask against its written-out rule, save its map picture."""
import os

import torch

import maskattn as ma

OUT = os.environ.get("MASKATTN_GALLERY_OUT", os.path.join(os.path.dirname(os.path.abspath(__file__)), "img"))


def show(name: str, mask: ma.Mask, rule, L: int, block: int = 32, **compile_kw) -> ma.BlockMap:
    """``rule(b, h, i, j)`` on broadcast int64 grids -> bool; asserts ``materialize()`` equals it,
    compiles the map and saves ``OUT/<name>.png``."""
    mat = mask.materialize(L, L, q_offset=compile_kw.get("q_offset"))
    nb, nh = mat.shape[:2]
    off = compile_kw.get("q_offset", 0) or 0
    b = torch.arange(nb).view(-1, 1, 1, 1)
    h = torch.arange(nh).view(1, -1, 1, 1)
    i = torch.arange(L).view(1, 1, -1, 1) + off
    j = torch.arange(L).view(1, 1, 1, -1)
    want = torch.as_tensor(rule(b, h, i, j)).expand(nb, nh, L, L)
    assert torch.equal(mat, want), f"{name}: mask differs from its written-out rule"
    bm = ma.compile_mask(mask, L, L, block_q=block, block_k=block, **compile_kw)
    os.makedirs(OUT, exist_ok=True)
    bm.plot(os.path.join(OUT, f"{name}.png"))
    print(f"{name}: {bm}")
    return bm
