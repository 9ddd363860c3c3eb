"""One case per call, run a few times, for Nsight Compute (``ncu``) to profile one kernel launch.

    ncu -k regex:_attn_fwd --launch-skip 2 --launch-count 1 --section SpeedOfLight \\
        python benchmarks/ncu_targets.py fwd:causal:32768

``flexfwd:`` / ``flexbwd:`` cases run FlexAttention's Triton backend (``torch.compile(flex_attention,
dynamic=False)``; its kernels are named ``triton_tem_*``) on the same family and shapes.

Cases use the standard shapes (bf16, D=128): the training families at B=1, H=16 and the
inference shapes of bench_inference.py (Hq=32, Hkv=8)."""
from __future__ import annotations

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import maskattn as ma  # noqa: E402
from benchmarks import families  # noqa: E402


def training(family: str, L: int, backward: bool):
    mask = families.mask(family, L)
    q, k, v = (torch.randn(1, 16, L, 128, device="cuda", dtype=torch.bfloat16, requires_grad=backward)
               for _ in range(3))
    bm = ma.compile_mask(mask, L, L, device="cuda")
    if not backward:
        return lambda: ma.attention(q, k, v, bm)
    out = ma.attention(q, k, v, bm)
    do = torch.randn_like(out)
    return lambda: torch.autograd.grad(out, (q, k, v), do, retain_graph=True)


def flex_training(family: str, L: int, backward: bool):
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    import torch._functorch.config as functorch_config
    functorch_config.donated_buffer = False  # the compiled backward runs again on a retained graph
    flex = torch.compile(flex_attention, dynamic=False)
    block_mask = create_block_mask(families.mask_mod(family, L, device="cuda"), None, None, L, L, device="cuda",
                                   _compile=L > 32768)
    q, k, v = (torch.randn(1, 16, L, 128, device="cuda", dtype=torch.bfloat16, requires_grad=backward)
               for _ in range(3))
    if not backward:
        return lambda: flex(q, k, v, block_mask=block_mask)
    out = flex(q, k, v, block_mask=block_mask)
    do = torch.randn_like(out)
    return lambda: torch.autograd.grad(out, (q, k, v), do, retain_graph=True)


def inference(label: str):
    from benchmarks.bench_inference import HKV, HQ, cases
    for name, B, lq, lk, mask in cases():
        if name.startswith(label):
            q = torch.randn(B, HQ, lq, 128, device="cuda", dtype=torch.bfloat16)
            k, v = (torch.randn(B, HKV, lk, 128, device="cuda", dtype=torch.bfloat16) for _ in range(2))
            bm = ma.compile_mask(mask.to("cuda"), lq, lk, device="cuda")
            return lambda: ma.attention(q, k, v, bm)
    raise SystemExit(f"no inference case {label!r}")


def main():
    case = sys.argv[1]
    kind, *rest = case.split(":")  # fwd:causal:32768, bwd:tree:8192, flexbwd:documents:32768, inf:tree
    if kind in ("fwd", "bwd"):
        family, L = rest
        fn = training(family, int(L), kind == "bwd")
    elif kind in ("flexfwd", "flexbwd"):
        family, L = rest
        fn = flex_training(family, int(L), kind == "flexbwd")
    else:
        fn = inference(rest[0])
    for _ in range(3):
        fn()
    torch.cuda.synchronize()


if __name__ == "__main__":
    main()
