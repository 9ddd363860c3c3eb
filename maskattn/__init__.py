"""maskattn: sparse and masked attention on GPUs, driven by compact mask objects."""
from . import reference
from .api import attention
from .block_map import BlockMap
from .compiler import compile_mask
from .paged import paged_attention
from .masks import (Mask, causal, dense, documents, full, longformer, padding, prefix_lm, sliding_window,
                    tree)

__version__ = "0.1.0"

__all__ = ["attention", "paged_attention", "reference", "Mask", "BlockMap", "compile_mask", "causal", "sliding_window", "longformer", "documents", "tree",
           "prefix_lm", "padding", "dense", "full", "__version__"]
