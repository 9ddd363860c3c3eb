"""maskattn: sparse and masked attention on GPUs, driven by compact mask objects."""
from . import reference
from .api import attention
from .block_map import BlockMap
from .compiler import compile_mask
from .paged import paged_attention
from .masks import (Mask, block_sparse, causal, dense, documents, from_function, full, longformer, neighborhood,
                    padding, per_batch, per_head, prefix_lm, query_mask, sliding_window, tree)

__version__ = "0.1.0"

__all__ = ["attention", "paged_attention", "reference", "Mask", "BlockMap", "compile_mask", "causal", "sliding_window", "longformer", "documents", "tree",
           "prefix_lm", "padding", "dense", "full", "query_mask", "per_head", "per_batch", "block_sparse", "neighborhood",
           "from_function", "__version__"]
