"""``BlockMap``: the tile-level map of a mask that the kernels walk.

Format (all index tensors int32, on the device the map was compiled on). The score matrix
``(Lq, Lk)`` is cut into tiles of ``block_q x block_k``; ``Tq = ceil(Lq / block_q)`` and
``Tk = ceil(Lk / block_k)``. The mask may differ per batch row and head: ``batch`` is 1 or
B, ``heads`` is 1 or Hq (1 = shared). A *map row* is one ``(b, h, query tile)``, numbered
``(b * heads + h) * Tq + qt``; a *map column* is one ``(b, h, key tile)``, numbered
``(b * heads + h) * Tk + kt``. Each tile is EMPTY (never visited), FULL (every pair
allowed: no masking) or PARTIAL (some pairs allowed: a bitmap says which). Tiles that
stick out past ``Lq`` or ``Lk`` are never FULL, so kernels need no bounds checks on full tiles.

Row view (forward pass, dQ), compressed sparse rows:
    full_ptr    (rows + 1,)   full tiles of row ``r`` are ``full_idx[full_ptr[r]:full_ptr[r+1]]``
    full_idx    (n_full,)     key-tile index of each full tile
    part_ptr    (rows + 1,)   likewise for partial tiles
    part_idx    (n_partial,)  key-tile index of each partial tile
    bitmaps     (n_partial, block_q, block_k // 32)  bit ``c % 32`` of word ``[p, r, c // 32]``
                is 1 iff row ``r``, column ``c`` of partial tile ``p`` may attend; out-of-range bits are 0
Column view (dK/dV), the transpose:
    t_full_ptr, t_full_idx    query-tile index of each full tile, per map column
    t_part_ptr, t_part_idx    query-tile index of each partial tile, per map column
    t_part_slot (n_partial,)  row of ``bitmaps`` for each entry of ``t_part_idx``
Index arrays may hold unused entries past their pointers' last value: maps of a single
query tile are built without host synchronisation (``compile_row.py``) at the largest size
the lists can have. Always read ``idx[ptr[r]:ptr[r+1]]``.
Work order (heaviest first, so long rows start early):
    q_order (batch * heads, Tq) query tiles of each (b, h) sorted by descending tile count
    k_order (batch * heads, Tk) key tiles likewise
Statistics: ``num_allowed`` (batch, heads) int64, allowed (query, key) pairs; host ints
``max_row_tiles`` (non-empty tiles of the busiest map row), ``max_col_tiles`` (of the busiest
column) and ``nonempty_tiles`` (all non-empty tiles), which choose the kernels' launch shapes;
0 where unknown (maps of a single query tile, built without reading anything back from the
device).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from .masks.grid import EMPTY, FULL, PARTIAL


@dataclass
class BlockMap:
    q_len: int
    kv_len: int
    q_offset: int
    block_q: int
    block_k: int
    batch: int
    heads: int
    full_ptr: torch.Tensor
    full_idx: torch.Tensor
    part_ptr: torch.Tensor
    part_idx: torch.Tensor
    bitmaps: torch.Tensor
    t_full_ptr: torch.Tensor
    t_full_idx: torch.Tensor
    t_part_ptr: torch.Tensor
    t_part_idx: torch.Tensor
    t_part_slot: torch.Tensor
    q_order: torch.Tensor
    k_order: torch.Tensor
    num_allowed: torch.Tensor
    max_row_tiles: int = 0
    nonempty_tiles: int = 0
    max_col_tiles: int = 0
    mask_repr: str = ""

    # ---- shape ------------------------------------------------------------------------
    @property
    def n_q_tiles(self) -> int:
        return -(-self.q_len // self.block_q)

    @property
    def n_k_tiles(self) -> int:
        return -(-self.kv_len // self.block_k)

    @property
    def device(self) -> torch.device:
        return self.full_ptr.device

    @property
    def n_full(self) -> int:
        """Number of FULL tiles (reads the pointers: a device sync on GPU maps)."""
        return int(self.full_ptr[-1])

    @property
    def n_partial(self) -> int:
        """Number of PARTIAL tiles (reads the pointers: a device sync on GPU maps)."""
        return int(self.part_ptr[-1])

    @property
    def n_tiles(self) -> int:
        return self.batch * self.heads * self.n_q_tiles * self.n_k_tiles

    @property
    def density(self) -> float:
        """Allowed pairs / (Lq * Lk), averaged over the distinct (batch, head) masks."""
        return float(self.num_allowed.double().mean()) / (self.q_len * self.kv_len)

    @property
    def tile_density(self) -> float:
        """Non-empty tiles / all tiles."""
        return (self.n_full + self.n_partial) / self.n_tiles

    def to(self, device) -> "BlockMap":
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        for k, v in moved.items():
            if isinstance(v, torch.Tensor):
                moved[k] = v.to(device)
        return BlockMap(**moved)

    # ---- views ------------------------------------------------------------------------
    def to_dense(self) -> torch.Tensor:
        """Tile classes ``(batch, heads, Tq, Tk)`` int8: 0 empty, 1 partial, 2 full."""
        tq, tk = self.n_q_tiles, self.n_k_tiles
        out = torch.full((self.batch * self.heads * tq * tk,), EMPTY, dtype=torch.int8, device=self.device)
        for ptr, idx, cls in ((self.full_ptr, self.full_idx, FULL), (self.part_ptr, self.part_idx, PARTIAL)):
            rows = torch.repeat_interleave(torch.arange(ptr.numel() - 1, device=self.device), ptr.diff().long())
            out[rows * tk + idx[:rows.numel()].long()] = cls
        return out.view(self.batch, self.heads, tq, tk)

    def to_scipy(self, b: int = 0, h: int = 0):
        """The tile pattern of one (batch row, head) as a ``scipy.sparse.csr_matrix`` (Tq, Tk):
        2 for full tiles, 1 for partial ones."""
        import scipy.sparse as sp

        dense_tiles = self.to_dense()[b % self.batch, h % self.heads].cpu().numpy()
        return sp.csr_matrix(dense_tiles)

    def to_string(self, b: int = 0, h: int = 0, max_width: int = 64) -> str:
        """ASCII picture of one (batch row, head): '█' full, '░' partial, ' ' empty.
        Larger maps are shown downsampled (a cell shows the densest tile it covers)."""
        tiles = self.to_dense()[b % self.batch, h % self.heads].cpu()
        step = max(1, -(-max(tiles.shape) // max_width))
        if step > 1:
            tiles = torch.nn.functional.max_pool2d(tiles[None].float(), step, ceil_mode=True)[0].to(torch.int8)
        chars = {EMPTY: " ", PARTIAL: "░", FULL: "█"}
        lines = ["".join(chars[int(c)] for c in row) for row in tiles]
        head = f"{self.mask_repr or 'BlockMap'}  (tile {self.block_q}x{self.block_k}" + (f", 1 cell = {step}x{step} tiles)" if step > 1 else ")")
        return head + "\n" + "\n".join("|" + ln + "|" for ln in lines)

    def plot(self, path, b: int = 0, h: int = 0) -> None:
        """Save a PNG of one (batch row, head)'s tile classes, with a legend for full / partial /
        empty tiles (needs matplotlib)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.colors import ListedColormap

        from matplotlib.patches import Patch

        tiles = self.to_dense()[b % self.batch, h % self.heads].cpu().numpy()
        colors = ["white", "#f4a261", "#264653"]  # empty, partial, full
        fig, ax = plt.subplots(figsize=(6, 6 * tiles.shape[0] / max(tiles.shape[1], 1) + 0.5))
        ax.imshow(tiles, cmap=ListedColormap(colors), vmin=0, vmax=2, interpolation="nearest")
        ax.legend(handles=[Patch(facecolor=c, edgecolor="gray", label=name)
                           for c, name in zip(colors[::-1], ("full", "partial", "empty"))],
                  loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        ax.set_title(f"{self.mask_repr}\nfull / partial / empty tiles = {self.n_full} / {self.n_partial} / "
                     f"{self.n_tiles - self.n_full - self.n_partial}", fontsize=9)
        ax.set_xlabel(f"key tile ({self.block_k})")
        ax.set_ylabel(f"query tile ({self.block_q})")
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)

    def _offset_repr(self) -> str:
        off = self.q_offset
        if isinstance(off, torch.Tensor):
            vals = off.tolist()
            return str(vals) if len(vals) <= 4 else f"<{len(vals)} per-batch offsets>"
        return str(off)

    def __repr__(self) -> str:
        empty = self.n_tiles - self.n_full - self.n_partial
        return (f"BlockMap({self.mask_repr or '?'}, shape=(B={self.batch}, H={self.heads}, Lq={self.q_len}, "
                f"Lk={self.kv_len}), q_offset={self._offset_repr()}, tile={self.block_q}x{self.block_k}, "
                f"density={self.density:.2%}, tile_density={self.tile_density:.2%}, "
                f"full={self.n_full}, partial={self.n_partial}, empty={empty})")
