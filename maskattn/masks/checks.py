"""Argument checks shared by the mask factories: clear errors naming the argument."""
from __future__ import annotations

import torch

# Positions stay inside int64 arithmetic: query offsets are bounded by 2**62 (positions are
# then below 2**62 + length) and windows are capped at 3 * 2**61, more than any distance
# between two such positions, so a larger window means the same as the cap.
MAX_Q_OFFSET = 2**62
MAX_WINDOW = 3 * 2**61


def as_device(name: str, value) -> torch.device:
    """A device that can hold tensors here: clear errors for unknown names and missing CUDA."""
    try:
        dev = torch.device(value)
    except (RuntimeError, TypeError):
        raise ValueError(f"{name}: expected a torch device such as 'cpu' or 'cuda', got {value!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{name}: got {value!r}, but CUDA is not available (torch {torch.__version__}, "
                         f"compiled with CUDA: {torch.backends.cuda.is_built()})")
    return dev



def nonneg_int(name: str, value) -> int:
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
        value = int(value.item())
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected a non-negative int, got {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"{name}: expected a non-negative int, got {value}")
    return value


def as_index_tensor(name: str, value, ndims: tuple[int, ...]) -> torch.Tensor:
    """A list / int tensor -> int64 tensor with one of the allowed numbers of dims."""
    t = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
    if t.numel() == 0 and t.is_floating_point():  # [] / torch.tensor([]) default to float: no values to reject
        t = t.to(torch.int64)
    if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
        raise TypeError(f"{name}: expected integers, got dtype {t.dtype}")
    if t.dim() not in ndims:
        raise ValueError(f"{name}: expected a tensor with {' or '.join(map(str, ndims))} dims, got shape {tuple(t.shape)}")
    return t.to(torch.int64)


def as_bool_tensor(name: str, value, ndims: tuple[int, ...]) -> torch.Tensor:
    """A bool tensor, or an integer 0/1 tensor -> bool tensor with one of the allowed numbers of dims."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    if value.is_floating_point() or value.is_complex():
        raise TypeError(f"{name}: expected a bool or 0/1 integer tensor, got dtype {value.dtype}")
    if value.dim() not in ndims:
        raise ValueError(f"{name}: expected {' or '.join(map(str, ndims))} dims, got shape {tuple(value.shape)}")
    if value.dtype != torch.bool:
        if value.numel() and bool(((value != 0) & (value != 1)).any()):
            raise ValueError(f"{name}: integer masks must hold only 0 and 1")
        value = value != 0
    return value


def describe(t: torch.Tensor) -> str:
    return f"<{str(t.dtype).replace('torch.', '')} {tuple(t.shape)}>"


def batch_row(param: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Index for dim 0 of a (B|1, ...) parameter: b itself, or 0 when the parameter is shared."""
    return b if param.shape[0] > 1 else torch.zeros_like(b)
