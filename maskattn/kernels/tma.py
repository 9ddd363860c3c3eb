"""Host side of the tensor-descriptor (TMA) loads the kernels use.

Kernels build their descriptors on the device (``tl.make_tensor_descriptor``), which needs
a small global scratch buffer per program from Triton's allocator; ``ensure_allocator``
installs one backed by PyTorch unless the user already set their own. The copy engine
also needs 16-byte aligned base addresses and row strides: ``tma_operand`` passes a
tensor through when it qualifies and otherwise makes an aligned copy (zero-padding the
head dim to a multiple of 16 bytes when the head dim itself is the problem).
"""
from __future__ import annotations

import torch
import triton

try:  # the allocator is a ContextVar in Triton >= 3.3: set per thread (autograd runs backward elsewhere)
    from triton.runtime._allocation import NullAllocator, _allocator
except ImportError:  # pragma: no cover - older Triton: always set it
    NullAllocator, _allocator = None, None

_ALIGN = 16  # bytes


def _torch_alloc(size: int, alignment: int, stream):
    return torch.empty(size, dtype=torch.int8, device="cuda" if torch.cuda.is_available() else "cpu")


def ensure_allocator() -> None:
    """Give Triton a scratch allocator for device-side descriptors, unless one is set."""
    if _allocator is None or isinstance(_allocator.get(), NullAllocator):
        triton.set_allocator(_torch_alloc)


def padded_dim(d: int, dtype: torch.dtype) -> int:
    """The head dim rounded up so that one row is a multiple of 16 bytes."""
    per = _ALIGN // dtype.itemsize
    return -(-d // per) * per


def tma_operand(t: torch.Tensor, d_pad: int) -> torch.Tensor:
    """``t`` (B, H, L, D) itself if the copy engine can read it (unit last stride, 16-byte
    aligned base and strides, D == d_pad), else an aligned copy (B, H, L, d_pad), zero-padded."""
    size = t.element_size()
    ok = (t.shape[-1] == d_pad and t.stride(-1) == 1 and t.data_ptr() % _ALIGN == 0
          and all((s * size) % _ALIGN == 0 for s in t.stride()[:-1]))
    if ok:
        return t
    out = t.new_zeros(t.shape[:-1] + (d_pad,))
    out[..., :t.shape[-1]] = t
    return out
