"""Mask objects: small descriptions of which (query, key) pairs may attend."""
from .band import causal, sliding_window
from .block_sparse import block_sparse
from .base import Mask
from .dense import dense
from .documents import documents
from .full import full
from .function import from_function
from .longformer import longformer
from .neighborhood import neighborhood
from .padding import padding
from .positions import query_mask
from .prefix_lm import prefix_lm
from .select import per_batch, per_head
from .tree import tree

__all__ = ["Mask", "causal", "sliding_window", "longformer", "documents", "tree", "prefix_lm",
           "padding", "dense", "full", "query_mask", "per_head", "per_batch", "block_sparse",
           "neighborhood", "from_function"]
