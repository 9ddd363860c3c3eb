"""Kernel launch parameters: tile sub-blocks, warps and pipeline depth per head dim.

The block map fixes the tile (``block_q x block_k``, 128 x 128 by default); kernels work
on sub-blocks that divide it. Values chosen from H100 sweeps (benchmarks/results)."""
from __future__ import annotations

import os

import torch


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def next_pow2(x: int) -> int:
    return 1 << (x - 1).bit_length()


def dot_precision(dtype: torch.dtype) -> str:
    # fp32 inputs get exact fp32 products (no TF32) so fp32 results are fp32-accurate
    return "ieee" if dtype == torch.float32 else "tf32"


def forward_config(tile_q: int, tile_k: int, head_dim: int, dtype: torch.dtype) -> dict:
    d = next_pow2(max(head_dim, 16))
    if interpreting():
        return dict(BLOCK_M=min(tile_q, 64), BLOCK_N=min(tile_k, 64), num_warps=4, num_stages=1)
    big = dtype == torch.float32 or d > 128
    block_m = min(tile_q, 64 if big else 128)
    block_n = min(tile_k, 32 if d > 128 and dtype == torch.float32 else 64 if big else 128)
    return dict(BLOCK_M=block_m, BLOCK_N=block_n, num_warps=8 if block_m * d >= 128 * 128 else 4,
                num_stages=2 if big else 3)


def backward_config(tile_q: int, tile_k: int, head_dim: int, dtype: torch.dtype) -> dict:
    d = next_pow2(max(head_dim, 16))
    if interpreting():
        return dict(BLOCK_M=min(tile_q, 32), BLOCK_N=min(tile_k, 64), num_warps=4, num_stages=1)
    big = dtype == torch.float32 or d > 128
    return dict(BLOCK_M=min(tile_q, 32 if big else 64), BLOCK_N=min(tile_k, 64 if big else 128),
                num_warps=4 if big and d <= 64 else 8, num_stages=2 if big else 3)
