"""The round-2 mask constructs on the GPU: compile time against causal() and FlexAttention's
create_block_mask, and forward / forward+backward time against FlexAttention with the same rule
as a mask_mod. B=1, H=16, D=128, bf16, ~8k tokens; do_bench medians after warm-up.

    PYTHONPATH=. python benchmarks/bench_masks.py [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import maskattn as ma  # noqa: E402

H, D = 16, 128


def cases(dev):
    """(name, L, maskattn mask, flex mask_mod)."""
    out = []
    L = 8192
    out.append(("causal (reference)", L, ma.causal(), lambda b, h, q, k: k <= q))
    out.append(("sliding_window(2048, dilation=2)", L, ma.sliding_window(2048, dilation=2),
                lambda b, h, q, k: (k <= q) & (q - k <= 2048) & ((q - k) % 2 == 0)))
    span = (torch.arange(L, device=dev) // 1024) % 2 == 0  # queries in alternating 1k spans
    out.append(("query_mask(spans) & causal", L, ma.query_mask(span) & ma.causal(), lambda b, h, q, k: span[q] & (k <= q)))
    sinks = ma.padding(torch.arange(L)[None] < 4)  # the first 4 keys (attention sinks)
    streaming = ma.causal() & (ma.sliding_window(1023) | sinks)
    heads = [ma.causal() if h % 2 else streaming for h in range(H)]
    odd = torch.arange(H, device=dev) % 2 == 1
    out.append(("per_head (DuoAttention, 2 distinct)", L, ma.per_head(heads),
                lambda b, h, q, k: (k <= q) & (odd[h] | (q - k <= 1023) | (k < 4))))
    lay = torch.rand(L // 128, L // 128, generator=torch.Generator().manual_seed(0)) < 0.1
    lay |= torch.eye(L // 128, dtype=torch.bool)
    lay_d = lay.to(dev)
    out.append(("block_sparse 10% (128x128 blocks)", L, ma.block_sparse(lay, 128, 128),
                lambda b, h, q, k: lay_d[q // 128, k // 128]))
    out.append(("from_function (chunked causal 1024)", L, ma.from_function(lambda b, h, i, j: (i // 1024 == j // 1024) & (j <= i)),
                lambda b, h, q, k: (q // 1024 == k // 1024) & (k <= q)))
    for shape, kern in (((96, 96), (13, 13)), ((128, 128), (13, 13)), ((8, 32, 32), (3, 7, 7))):
        n = math.prod(shape)
        out.append((f"neighborhood({shape}, {kern})", n, ma.neighborhood(shape, kern), _natten_mod(shape, kern)))
    return out


def _natten_mod(shape, kernel):
    strides = [math.prod(shape[a + 1:]) for a in range(len(shape))]

    def mod(b, h, q, k):
        ok = q >= 0
        for n, kk, s in zip(shape, kernel, strides):
            cq, ck = (q // s) % n, (k // s) % n
            start = (cq - kk // 2).clamp(0, n - kk)
            ok = ok & (ck >= start) & (ck < start + kk)
        return ok
    return mod


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = p.parse_args()
    import triton

    from benchmarks.gpu_setup import flex_and_timer
    flex, create_block_mask, bench = flex_and_timer("bench_masks.py")
    dev = "cuda"
    rows = []
    causal_compile = {}

    def compile_ms(fn, reps=5):
        fn()
        torch.cuda.synchronize()
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            ts.append((time.perf_counter() - t0) * 1e3)
        return sorted(ts)[reps // 2]

    for name, L, mask, mod in cases(dev):
        mask = mask.to(dev)
        if L not in causal_compile:
            causal_compile[L] = compile_ms(lambda: ma.compile_mask(ma.causal(), L, L, device=dev))
        row = dict(case=name, L=L, causal_compile_ms=causal_compile[L],
                   compile_ms=compile_ms(lambda: ma.compile_mask(mask, L, L, device=dev)))
        row["compile_vs_causal"] = row["compile_ms"] / row["causal_compile_ms"]
        bm = ma.compile_mask(mask, L, L, device=dev)
        row["density"], row["tile_density"] = bm.density, bm.tile_density
        try:
            hflex = H if "per_head" in name else None
            row["flex_block_mask_ms"] = compile_ms(lambda: create_block_mask(mod, None, hflex, L, L, device=dev), 3)
            fbm = create_block_mask(mod, None, hflex, L, L, device=dev)
        except Exception as e:  # noqa: BLE001
            fbm, row["flex_error"] = None, f"{type(e).__name__}: {str(e).splitlines()[0][:100]}"
        g = torch.Generator(device=dev).manual_seed(0)
        q, k, v, do = (torch.randn(1, H, L, D, device=dev, dtype=torch.bfloat16, generator=g) for _ in range(4))
        q, k, v = (t.requires_grad_() for t in (q, k, v))
        impls = {"maskattn": lambda: ma.attention(q, k, v, bm)}
        if fbm is not None:
            impls["flex"] = lambda: flex(q, k, v, block_mask=fbm)
        for impl, fn in impls.items():
            row[f"{impl}_fwd_ms"] = bench(fn)
            row[f"{impl}_fwdbwd_ms"] = bench(lambda: torch.autograd.grad(fn(), (q, k, v), do))
        if fbm is not None:
            with torch.no_grad():
                row["max_abs_diff_vs_flex"] = float((ma.attention(q, k, v, bm) - flex(q, k, v, block_mask=fbm)).abs().max())
        rows.append(row)
        print({a: (round(b, 3) if isinstance(b, float) else b) for a, b in row.items()}, flush=True)
    env = dict(gpu=torch.cuda.get_device_name(), torch=torch.__version__, triton=triton.__version__, maskattn=ma.__version__)
    os.makedirs(args.out, exist_ok=True)
    json.dump(dict(env=env, rows=rows), open(os.path.join(args.out, "masks.json"), "w"), indent=1)
    lines = [f"GPU: {env['gpu']}; torch {env['torch']}, triton {env['triton']}, maskattn {env['maskattn']}. B=1, "
             f"H={H}, D={D}, bf16. ms, do_bench medians; compile = compile_mask wall time (median of 5, synchronised); "
             "speedup = flex time / maskattn time.", "",
             "| mask | L | density | compile ms | x causal compile | flex create_block_mask ms | fwd ms | flex fwd ms | "
             "fwd speedup | fwd+bwd ms | flex fwd+bwd ms | fwd+bwd speedup |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        fx = lambda key: r.get(key, float("nan"))  # noqa: E731
        lines.append(f"| {r['case']} | {r['L']} | {r['density']:.2%} | {r['compile_ms']:.2f} | {r['compile_vs_causal']:.1f} | "
                     f"{fx('flex_block_mask_ms'):.2f} | {r['maskattn_fwd_ms']:.3f} | {fx('flex_fwd_ms'):.3f} | "
                     f"{fx('flex_fwd_ms') / r['maskattn_fwd_ms']:.2f} | {r['maskattn_fwdbwd_ms']:.3f} | "
                     f"{fx('flex_fwdbwd_ms'):.3f} | {fx('flex_fwdbwd_ms') / r['maskattn_fwdbwd_ms']:.2f} |")
    open(os.path.join(args.out, "masks.md"), "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
