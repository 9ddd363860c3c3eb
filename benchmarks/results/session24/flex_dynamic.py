"""Session 24: backward alone on documents / sliding 32k (B=1, H=16, D=128, bf16), one process:
maskattn's Hopper backward, its deterministic (portable) backward, flex compiled with dynamic=False,
and flex compiled with the default dynamic=None after an 8k call (automatic dynamic shapes, as
bench_attention.py ran flex when one process held both sizes)."""
import sys

import torch
import triton.testing

sys.path.insert(0, ".")
import maskattn as ma  # noqa: E402
from benchmarks import families  # noqa: E402

import torch._dynamo as dynamo  # noqa: E402
import torch._functorch.config as functorch_config  # noqa: E402
from torch.nn.attention.flex_attention import create_block_mask, flex_attention  # noqa: E402

dynamo.config.cache_size_limit = 256
dynamo.config.recompile_limit = 256
functorch_config.donated_buffer = False
flex_static = torch.compile(flex_attention, dynamic=False)
flex_auto = torch.compile(flex_attention)


def inputs(L):
    return [torch.randn(1, 16, L, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3)]


def bwd_time(fwd, q, k, v):
    out = fwd(q, k, v)
    do = torch.randn_like(out)
    return triton.testing.do_bench(lambda: torch.autograd.grad(out, (q, k, v), do, retain_graph=True),
                                   warmup=25, rep=200, return_mode="median")


# the automatic-dynamic flex first sees 8k, as in a bench run over both sizes
for fam in ("documents", "sliding"):
    q, k, v = inputs(8192)
    bm = create_block_mask(families.mask_mod(fam, 8192, "cuda"), None, None, 8192, 8192, device="cuda")
    bwd_time(lambda q, k, v: flex_auto(q, k, v, block_mask=bm), q, k, v)

print(torch.cuda.get_device_name(), torch.__version__, triton.__version__)
for fam in ("documents", "sliding"):
    L = 32768
    q, k, v = inputs(L)
    mbm = ma.compile_mask(families.mask(fam, L), L, L, device="cuda")
    fbm = create_block_mask(families.mask_mod(fam, L, "cuda"), None, None, L, L, device="cuda")
    cases = {
        "maskattn": lambda q, k, v: ma.attention(q, k, v, mbm),
        "maskattn det": lambda q, k, v: ma.attention(q, k, v, mbm, deterministic=True),
        "flex dynamic=False": lambda q, k, v: flex_static(q, k, v, block_mask=fbm),
        "flex automatic dynamic": lambda q, k, v: flex_auto(q, k, v, block_mask=fbm),
    }
    for rnd in range(2):
        print(fam, L, "round", rnd, " | ".join(f"{n} {bwd_time(f, q, k, v):.3f} ms" for n, f in cases.items()),
              flush=True)
