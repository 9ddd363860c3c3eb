"""``documents(...)``: packed sequences; a query sees keys of its own document
(and only earlier ones when ``causal``)."""
from __future__ import annotations

import torch

from .band import causal as causal_mask
from .base import Mask, Named
from .checks import as_index_tensor, describe
from .grid import TileGrid, lookup, tile_class, with_fill


class SameDocument(Mask):
    """``doc[i] == doc[j]``; ``doc_ids``: (B|1, L) int64 indexed by absolute position."""

    def __init__(self, doc_ids: torch.Tensor, name: str):
        self.doc_ids, self.name = doc_ids, name
        self._batch = doc_ids.shape[0]
        # positions outside the documents get ids that match nothing: -1 for queries, -2 for keys
        self._q_table, self._k_table = with_fill(doc_ids, -1), with_fill(doc_ids, -2)

    def _tensors(self):
        return [self.doc_ids]

    def _moved(self, device):
        return self if self.doc_ids.device == device else SameDocument(self.doc_ids.to(device), self.name)

    def _check_lengths(self, q_len, kv_len, q_offset):
        if self.doc_ids.shape[-1] != kv_len:
            raise ValueError(f"{self.name}: documents cover {self.doc_ids.shape[-1]} positions but kv_len is {kv_len}")

    def _allowed(self, b, h, i, j, q_offset):
        return lookup(self._q_table, i, b) == lookup(self._k_table, j, b)

    def _tile_classes(self, grid: TileGrid):
        qmin, qmax = torch.aminmax(grid.tile_values(self.doc_ids, "q", -1), dim=-1)  # (B, Tq)
        kmin, kmax = torch.aminmax(grid.tile_values(self.doc_ids, "k", -2), dim=-1)  # (B, Tk)
        qmin, qmax, kmin, kmax = qmin[:, :, None], qmax[:, :, None], kmin[:, None, :], kmax[:, None, :]
        some = (qmax >= kmin) & (kmax >= qmin)  # the id ranges overlap: exact for sorted ids, conservative otherwise
        every = (qmax == kmin) & (qmin == kmax)  # i.e. qmin == qmax == kmin == kmax: one id on both sides
        return tile_class(some, every)[:, None]

    def __repr__(self):
        return self.name


def documents(lengths=None, doc_ids=None, causal: bool = True) -> Mask:
    """Packed documents. Give either ``lengths`` (a list, or a (B, n) tensor — rows may end
    in zero lengths — each row summing to the sequence length) or ``doc_ids`` ((L,) or (B, L),
    one document id per position). ``causal``: also require ``j <= i``."""
    if (lengths is None) == (doc_ids is None):
        raise ValueError("documents: give exactly one of lengths= or doc_ids=")
    if lengths is not None:
        lens = as_index_tensor("documents: lengths", lengths, (1, 2))
        lens = lens[None] if lens.dim() == 1 else lens
        if lens.numel() and int(lens.min()) < 0:
            raise ValueError(f"documents: lengths must be non-negative, got {int(lens.min())}")
        totals = lens.sum(-1)
        if totals.numel() == 0 or bool((totals != totals[0]).any()):
            raise ValueError(f"documents: every batch row's lengths must sum to the same length, got sums {totals.tolist()}")
        ends = lens.cumsum(-1)
        pos = torch.arange(int(totals[0]), device=lens.device).expand(lens.shape[0], -1).contiguous()
        ids = torch.searchsorted(ends, pos, right=True)
        shown = f"lengths={lens[0].tolist()}" if lens.shape[0] == 1 and lens.shape[1] <= 6 else f"lengths={describe(lens)}"
    else:
        ids = as_index_tensor("documents: doc_ids", doc_ids, (1, 2))
        ids = ids[None] if ids.dim() == 1 else ids
        if ids.numel():  # shift ids to >= 0 so they never meet the -1 / -2 of positions outside the sequence
            ids = ids - ids.min()
        shown = f"doc_ids={describe(ids)}"
    name = f"documents({shown}{'' if causal else ', causal=False'})"
    same = SameDocument(ids.contiguous(), name)
    return Named(same & causal_mask() if causal else same, name)
