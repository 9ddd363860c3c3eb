"""Mask objects: small descriptions of which (query, key) pairs may attend."""
from .band import causal, sliding_window
from .base import Mask
from .dense import dense
from .documents import documents
from .full import full
from .longformer import longformer
from .padding import padding
from .prefix_lm import prefix_lm
from .tree import tree

__all__ = ["Mask", "causal", "sliding_window", "longformer", "documents", "tree", "prefix_lm",
           "padding", "dense", "full"]
