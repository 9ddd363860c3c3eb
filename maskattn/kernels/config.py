"""Kernel launch parameters: sub-block shapes, warps and pipeline depth per head dim.

The block map fixes the tile (``block_q x block_k``, 128 x 128 by default); kernels work
on sub-blocks that divide it. Starting points come from H100 sweeps (benchmarks/results);
``launch`` steps down (fewer stages, then smaller sub-blocks) when a configuration needs
more shared memory than the GPU has, and remembers what worked."""
from __future__ import annotations

import functools
import math
import os

import torch
from triton.runtime.errors import OutOfResources


# Triton releases whose Gluon kernels (flash_fwd_sm90, flash_bwd_sm90) were run on the GPU.
# Gluon's API changes between releases (3.9 renamed tma.async_copy_global_to_shared to
# async_load), so other releases take the portable kernels instead of failing to compile.
GLUON_TRITON_VERSIONS = ((3, 6),)


def gluon_tested(version: str | None = None) -> bool:
    """Is this Triton (or ``version``, e.g. "3.6.0") one whose Gluon kernels were checked?"""
    import triton
    major, minor = (int(x) for x in (version or triton.__version__).split(".")[:2])
    return (major, minor) in GLUON_TRITON_VERSIONS


def default_scale(head_dim: int) -> float:
    """The softmax scale when none is given: ``1/sqrt(D)`` (one definition: a replayed decode
    launch is looked up by the scale it was recorded with)."""
    return 1.0 / math.sqrt(head_dim)


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def next_pow2(x: int) -> int:
    return 1 << (x - 1).bit_length()


def dot_precision(dtype: torch.dtype) -> str:
    # fp32 inputs get exact fp32 products (no TF32) so fp32 results are fp32-accurate
    return "ieee" if dtype == torch.float32 else "tf32"


# Per-kernel overrides ("fwd", "dkdv", "dq" -> config dict), for tuning sweeps.
OVERRIDES: dict = {}


def _fit(cfg: dict, tile_q: int, tile_k: int) -> dict:
    return dict(cfg, BLOCK_M=min(cfg["BLOCK_M"], tile_q), BLOCK_N=min(cfg["BLOCK_N"], tile_k))


# (BLOCK_M, BLOCK_N, num_warps, num_stages) per size class (``_size_class``). H100 sweeps, bf16
# (benchmarks/tune_kernels.py, benchmarks/results/NOTES.md). Forward (session 4,
# tune_fwd_wide.log): one warpgroup per program and two programs per SM beat two warpgroups in
# one program by 11-44%, because the two programs' softmax and matrix products interleave on
# the SM: D <= 64 (64, 128, 4, 2), D <= 128 (128, 64, 4, 3); D = 256 (128, 128, 8, 2), 1.3x
# faster than (64, 64, 4, 3). Backward: (64, 64, 4, 3) for both kernels; head dim 256 (run 3):
# (64, 64, 8, 1), 2.3-2.7x faster than (32, 32, 4, 2) / (64, 32, 4, 2). fp32 operands need
# twice the registers and shared memory: the small tiles.
_FWD = {"d64": (64, 128, 4, 2), "d128": (128, 64, 4, 3), "d256": (128, 128, 8, 2), "fp32": (64, 64, 4, 2)}
# Maps whose busiest row outlasts the average program slot (Longformer's global rows: one
# query tile against every key tile) finish with that row's program running alone, and a
# lone one-warpgroup program uses half the SM: there, two warpgroups in one program
# (session 5: longformer 32k 1.58 ms with the 4-warp config, 0.88 with this one).
_FWD_LONG_ROWS = (128, 128, 8, 2)
_DKDV = {"d64": (64, 64, 4, 3), "d128": (64, 64, 4, 3), "d256": (64, 64, 8, 1), "fp32": (64, 64, 8, 1)}
_DQ = {"d64": (64, 64, 4, 3), "d128": (64, 64, 4, 3), "d256": (64, 64, 8, 1), "fp32": (64, 64, 8, 1)}
# split-KV decoding: (BLOCK_M packed query rows, BLOCK_N keys, warps, stages) by packed rows
# (H100 sweeps, benchmarks/results/tune_decode*.log: 64 keys and 4 warps best on decode q=1, q=4 and
# tree; 2 stages for 128 rows, tree 0.465 vs 0.539 ms. H200 sweep, session 10
# (results/session10/decode_sweep.log): for <= 16 rows 128-key blocks in 2 stages beat 64 in 3,
# decode q=1 0.273 -> 0.260 ms, q=4 0.273 -> 0.261, both at the default 4 splits)
_DECODE = {16: (16, 128, 4, 2), 32: (32, 64, 4, 2), 64: (64, 64, 4, 2), 128: (128, 64, 4, 2)}
_INTERPRETER = (64, 64, 4, 1)  # any valid shape; the interpreter ignores warps and stages


def _size_class(head_dim: int, dtype: torch.dtype) -> str:
    if dtype == torch.float32:
        return "fp32"
    return "d64" if head_dim <= 64 else "d128" if head_dim <= 128 else "d256"


def _pick(kind: str, table: dict, tile_q: int, tile_k: int, head_dim: int, dtype: torch.dtype) -> dict:
    if kind in OVERRIDES:
        return _fit(OVERRIDES[kind], tile_q, tile_k)
    if interpreting():
        m, n, w, s = _INTERPRETER
    else:
        m, n, w, s = table[_size_class(head_dim, dtype)]
    return _fit(dict(BLOCK_M=m, BLOCK_N=n, num_warps=w, num_stages=s), tile_q, tile_k)


@functools.lru_cache(maxsize=None)
def sm_count(device: torch.device) -> int:
    """Streaming multiprocessors of a CUDA device (4 elsewhere: the interpreter's stand-in)."""
    return torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 4


def is_row_bound(max_row_tiles: int, nonempty_tiles: int, programs_per_group: int, device: torch.device,
                 per_sm: int) -> bool:
    """Is a launch of ``per_sm`` resident programs per SM bound by the map's busiest row? True
    when that row's tiles exceed the mean tiles per program slot (SMs x ``per_sm``), over all
    ``programs_per_group`` (batch, head) pairs that share each map group. Unknown counts (0):
    False. Measured separation (benchmark families, 16 heads, 2 slots per SM): Longformer 2.4x
    the mean, every other family at most 0.75x."""
    slots = per_sm * sm_count(device)
    return max_row_tiles * slots > nonempty_tiles * programs_per_group > 0


def forward_config(tile_q: int, tile_k: int, head_dim: int, dtype: torch.dtype, row_bound: bool = False) -> dict:
    """``row_bound``: the map is bound by its busiest row (``is_row_bound()``)."""
    table = _FWD
    if row_bound and dtype != torch.float32:
        table = dict.fromkeys(_FWD, _FWD_LONG_ROWS)
    return _pick("fwd", table, tile_q, tile_k, head_dim, dtype)


def dkdv_config(tile_q: int, tile_k: int, head_dim: int, dtype: torch.dtype) -> dict:
    """dK/dV: BLOCK_N keys stay in registers, BLOCK_M query rows stream past them."""
    return _pick("dkdv", _DKDV, tile_q, tile_k, head_dim, dtype)


def dq_config(tile_q: int, tile_k: int, head_dim: int, dtype: torch.dtype) -> dict:
    """dQ (two-kernel path): BLOCK_M query rows stay in registers, BLOCK_N keys stream past them."""
    return _pick("dq", _DQ, tile_q, tile_k, head_dim, dtype)


def decode_config(packed_rows: int, tile_k: int, head_dim: int, dtype: torch.dtype, paged: bool = False) -> dict:
    """Split-KV decoding: one tile holds up to 128 packed (head, query) rows; more rows take
    several row blocks. Rows are padded to 16 (the smallest matrix-product tile). ``paged``:
    K / V rows gathered through a page table land in registers (no descriptors): 32-key blocks
    (sm_90a, Triton 3.6, 16 rows, 4 warps: 255 registers and 3.1 KB of stack at 128 keys, 4.5 KB
    without a map; 120 B at 32; not yet timed on a GPU)."""
    if "decode" in OVERRIDES:
        return _fit(OVERRIDES["decode"], 256, tile_k)
    m = min(128, next_pow2(max(16, packed_rows)))
    _, n, w, s = _DECODE[m]
    if interpreting():
        w, s = 4, 1
    elif dtype == torch.float32 or head_dim > 128:
        n, s = 32, 2
    elif paged:
        n = min(n, 32)
    return _fit(dict(BLOCK_M=m, BLOCK_N=n, num_warps=w, num_stages=s), 128, tile_k)


def programs_per_sm(cfg: dict) -> int:
    """Programs of launch config ``cfg`` resident per SM as its registers allow (64K per SM;
    up to 256 a thread unless the config caps them with ``maxnreg``)."""
    return max(1, 65536 // (cfg.get("maxnreg", 256) * 32 * cfg["num_warps"]))


_WORKING: dict = {}
# compiler resource report of the last launch of each kernel: name -> (registers, spills, shared bytes)
RESOURCES: dict = {}


def launch(kernel, grid_fn, args, constexprs: dict, cfg: dict, key):
    """Launch ``kernel[grid_fn(cfg)](*args, **constexprs, **cfg)``, stepping down on
    OutOfResources (shared memory): first fewer stages, then halved sub-blocks. ``args``
    is a tuple or a function of the config (for arguments that depend on the block sizes).
    Returns ``(compiled kernel, grid, config)`` of the launch that ran (the compiled kernel is
    None under the interpreter)."""
    key = (key, tuple(sorted(cfg.items())))
    cfg = _WORKING.get(key, cfg)
    while True:
        try:
            grid = grid_fn(cfg)
            compiled = kernel[grid](*(args(cfg) if callable(args) else args), **constexprs, **cfg)
            _WORKING[key] = cfg
            if not interpreting() and compiled is not None:
                RESOURCES[kernel.fn.__name__ if hasattr(kernel, "fn") else str(kernel)] = (
                    getattr(compiled, "n_regs", None), getattr(compiled, "n_spills", None),
                    getattr(compiled.metadata, "shared", None) if hasattr(compiled, "metadata") else None)
            return compiled, grid, cfg
        except OutOfResources:
            if cfg["num_stages"] > 1:
                cfg = dict(cfg, num_stages=cfg["num_stages"] - 1)
            elif max(cfg["BLOCK_M"], cfg["BLOCK_N"]) > 16:
                big = "BLOCK_M" if cfg["BLOCK_M"] >= cfg["BLOCK_N"] else "BLOCK_N"
                cfg = dict(cfg, **{big: cfg[big] // 2}, num_stages=2)
            else:
                raise
