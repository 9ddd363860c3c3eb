"""``padding(key_valid)``: only real keys, from a Hugging Face style 2-D ``attention_mask``."""
from __future__ import annotations

from .base import Mask
from .checks import as_bool_tensor, describe
from .positions import PositionSet


def padding(key_valid) -> Mask:
    """``key_valid``: (B, Lk) bool or 0/1 tensor, True / 1 for real keys."""
    flags = as_bool_tensor("padding: key_valid", key_valid, (2,))
    return PositionSet("k", f"padding({describe(flags)})", flags=flags, arg="key_valid")
