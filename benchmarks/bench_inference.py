"""Inference shapes: decoding, tree verification and chunked prefill (bf16, D=128, Hq=32, Hkv=8).

For each case: maskattn with a precompiled map (the kernels alone), per step (compile_mask
+ attention, what a decode loop that rebuilds its mask pays) and without a map where none is
needed (``kernels/unmasked_decode.py``: one token, ``attention(q, k, v)`` without a mask; several
under ``causal()``, ``attention(q, k, v, causal())``, causal rows), FlexAttention
(``torch.compile(flex_attention, dynamic=False)`` with a ``create_block_mask`` map, GQA), SDPA (``enable_gqa``;
a boolean mask where the alignment needs one), and the memory-bandwidth floor: bytes of K and V
read once / 3.0 TB/s (the H100's measured copy rate, the convention's floor) and the same bytes at
this GPU's copy rate measured in the same process (a 4 GB device-to-device copy, bytes read plus
written / time; it differs on other GPUs, e.g. an H200). Also: the GPU time and kernel launches of
a decode step's map preparation (compile_mask, and the row view the decode launches read,
``kernels/real_rows.py``), whether it syncs with the host, and a CUDA-graph replay of a
whole decode step (compile_mask + attention) against eager. Medians of do_bench after warm-up;
with ``--rounds N`` every implementation of a case is timed once a round for N interleaved rounds
and the median kept (rows near parity move by a few percent on a power-capped GPU).

    PYTHONPATH=. python benchmarks/bench_inference.py [--out benchmarks/results] [--rounds N]
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import maskattn as ma  # noqa: E402
from benchmarks.ab import median_rounds  # noqa: E402
from maskattn.kernels.real_rows import real_row_map  # noqa: E402
from maskattn.kernels.unmasked_decode import causal_end  # noqa: E402

HQ, HKV, D = 32, 8, 128
COPY_TBPS = 3.0


def tree_parents(n=64, seed=1):
    """``parents[t]`` uniform in [max(0, t - 8), t - 1] (root -1), seed 1: the standard verification tree."""
    rng = np.random.default_rng(seed)
    return [-1] + [int(rng.integers(max(0, t - 8), t)) for t in range(1, n)]


def cases():
    par = tree_parents()
    return [
        ("decode q=1", 8, 1, 32768, ma.causal()),
        ("decode q=4", 8, 4, 32768, ma.causal()),
        ("tree verify 64 / 32704", 4, 64, 32768, ma.tree(par, prefix=32704)),
        ("chunked prefill 4k / 32k", 1, 4096, 32768, ma.causal()),
    ]


def flex_mod(label, lq, lk, dev):
    off = lk - lq
    if label.startswith("tree"):
        dense = ma.tree(tree_parents(), prefix=32704).materialize(lq, lk, device=dev)[0, 0]
        return lambda b, h, qi, ki: dense[qi, ki]
    return lambda b, h, qi, ki: qi + off >= ki


def _ms(t) -> str:
    return "—" if t is None else f"{t:.3f}"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    p.add_argument("--rounds", type=int, default=1,
                   help="time every implementation of a case once a round, for N interleaved rounds (medians)")
    args = p.parse_args()
    import triton

    from benchmarks.gpu_setup import flex_and_timer
    flex, create_block_mask, bench = flex_and_timer("bench_inference.py")
    sdpa = torch.nn.functional.scaled_dot_product_attention
    dev = "cuda"
    rows = []
    src = torch.empty(2**31, dtype=torch.int16, device=dev)  # 4 GB: far past the L2
    dst = torch.empty_like(src)
    copy_tbps = 2 * src.numel() * 2 / (bench(lambda: dst.copy_(src)) * 1e-3) / 1e12
    del src, dst
    for label, B, lq, lk, mask in cases():
        g = torch.Generator(device=dev).manual_seed(0)
        q = torch.randn(B, HQ, lq, D, device=dev, dtype=torch.bfloat16, generator=g)
        k, v = (torch.randn(B, HKV, lk, D, device=dev, dtype=torch.bfloat16, generator=g) for _ in range(2))
        mask = mask.to(dev)
        bm = ma.compile_mask(mask, lq, lk, device=dev)
        kv_bytes = 2 * B * HKV * lk * D * 2
        row = dict(case=label, B=B, q_len=lq, kv_len=lk, floor_ms=kv_bytes / (COPY_TBPS * 1e12) * 1e3,
                   floor_measured_ms=kv_bytes / (copy_tbps * 1e12) * 1e3)
        bq = 128 if lq > 64 else max(16, 1 << (lq - 1).bit_length())  # the tile attention() compiles short blocks with
        fns = {"maskattn": lambda: ma.attention(q, k, v, bm),
               "maskattn_step": lambda: ma.attention(q, k, v, ma.compile_mask(mask, lq, lk, device=dev, block_q=bq))}
        ref = ma.attention(q, k, v, bm)
        # no map at all: one token sees the whole cache (the same attention without a mask), several
        # see the keys up to their own positions (causal rows, the mask object itself)
        no_map = (lambda: ma.attention(q, k, v)) if lq == 1 else (
            (lambda: ma.attention(q, k, v, mask)) if causal_end(mask, lq, lk, lk - lq) == lk else None)
        if no_map is not None:
            fns["maskattn_unmasked"] = no_map
            row["diff_unmasked"] = float((no_map() - ref).abs().max())
        try:
            fbm = create_block_mask(flex_mod(label, lq, lk, dev), None, None, lq, lk, device=dev)
            row["diff_vs_flex"] = float((flex(q, k, v, block_mask=fbm, enable_gqa=True) - ref).abs().max())
            fns["flex"] = lambda: flex(q, k, v, block_mask=fbm, enable_gqa=True)
        except Exception as e:  # noqa: BLE001 - reported, not fatal
            row["flex"], row["flex_error"] = float("nan"), f"{type(e).__name__}: {str(e).splitlines()[0][:100]}"
        if lq == 1:
            fns["sdpa"] = lambda: sdpa(q, k, v, enable_gqa=True)
        elif lq == lk:
            fns["sdpa"] = lambda: sdpa(q, k, v, is_causal=True, enable_gqa=True)
        else:  # bottom-right alignment needs an explicit mask
            dense = mask.materialize(lq, lk, device=dev)
            fns["sdpa"] = lambda: sdpa(q, k, v, attn_mask=dense, enable_gqa=True)
            row["diff_vs_sdpa"] = float((sdpa(q, k, v, attn_mask=dense, enable_gqa=True) - ref).abs().max())
        row.update(median_rounds(lambda fn: [bench(fn)], fns, args.rounds))
        rows.append(row)
        print({k_: (round(v_, 4) if isinstance(v_, float) else v_) for k_, v_ in row.items()}, flush=True)

    # mask preparation of a decode step: GPU time, launches, host syncs, graph capture
    mask = ma.causal()
    prep = {}
    tree = ma.tree(tree_parents(), prefix=32704).to(dev)
    for label, m, lq in (("q=1", mask, 1), ("q=4", mask, 4), ("tree 64", tree, 64)):
        # the map and the decode launches' row view of it (``real_rows``): both are made once per step
        fn = lambda: real_row_map(ma.compile_mask(m, lq, 32768, device=dev,  # noqa: E731
                                                  block_q=max(16, 1 << (lq - 1).bit_length())))
        fn()
        torch.cuda.synchronize()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            fn()
            torch.cuda.synchronize()
        kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        gpu_us = sum(getattr(e, "device_time_total", 0) or getattr(e, "cuda_time_total", 0) for e in kernels)
        torch.cuda.set_sync_debug_mode("error")  # any host sync raises
        try:
            fn()
            syncs = "none"
        except RuntimeError as e:
            syncs = f"syncs: {str(e).splitlines()[0][:80]}"
        finally:
            torch.cuda.set_sync_debug_mode("default")
        prep[label] = dict(gpu_us=gpu_us, launches=len(kernels), host_sync=syncs, wall_ms=bench(fn))
    # a whole decode step (map + attention) captured in a CUDA graph, replayed, against eager
    B = 8
    q = torch.randn(B, HQ, 1, D, device=dev, dtype=torch.bfloat16)
    k, v = (torch.randn(B, HKV, 32768, D, device=dev, dtype=torch.bfloat16) for _ in range(2))
    step = lambda: ma.attention(q, k, v, ma.compile_mask(mask, 1, 32768, device=dev))  # noqa: E731
    eager = step()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(2):
            step()
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = step()
    q.copy_(torch.randn_like(q))
    graph.replay()
    torch.cuda.synchronize()
    prep["graph"] = dict(replay_equals_eager=bool(torch.equal(captured, step())), replay_ms=bench(graph.replay))
    del eager
    env = dict(gpu=torch.cuda.get_device_name(), torch=torch.__version__, triton=triton.__version__, maskattn=ma.__version__,
               copy_tbps=copy_tbps, rounds=args.rounds)
    os.makedirs(args.out, exist_ok=True)
    json.dump(dict(env=env, rows=rows, mask_prep=prep), open(os.path.join(args.out, "inference.json"), "w"), indent=1)
    lines = [f"GPU: {env['gpu']}; torch {env['torch']}, triton {env['triton']}, maskattn {env['maskattn']}. "
             f"bf16, D={D}, Hq={HQ}, Hkv={HKV}. Times in ms (do_bench medians, {args.rounds} interleaved "
             f"round{'s' if args.rounds > 1 else ''}). floor = bytes of K and V read once "
             f"/ {COPY_TBPS} TB/s; 'measured floor': the same bytes at this GPU's measured copy rate, "
             f"{copy_tbps:.2f} TB/s. 'maskattn' uses a precompiled map; 'per step' adds compile_mask; 'no map': "
             f"attention(q, k, v) without a mask for one token (it sees the whole cache), attention(q, k, v, "
             f"causal()) for several (causal rows); no map at all.", "",
             "| case | B | q | kv | maskattn | per step | no map | flex | sdpa | floor | maskattn / floor | "
             "measured floor | maskattn / measured floor | flex / maskattn | sdpa / maskattn |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['B']} | {r['q_len']} | {r['kv_len']} | {r['maskattn']:.3f} | "
                     f"{r['maskattn_step']:.3f} | {_ms(r.get('maskattn_unmasked'))} | {r['flex']:.3f} | {r['sdpa']:.3f} | {r['floor_ms']:.3f} | "
                     f"{r['maskattn'] / r['floor_ms']:.2f} | {r['floor_measured_ms']:.3f} | "
                     f"{r['maskattn'] / r['floor_measured_ms']:.2f} | {r['flex'] / r['maskattn']:.2f} | {r['sdpa'] / r['maskattn']:.2f} |")
    lines += ["", "Mask preparation for a decode step (causal, or the 64-node tree; 32k keys; compile_mask and "
              "the decode launches' row view of the map): " + "; ".join(
        f"{k_}: {v_['gpu_us']:.0f} us GPU, {v_['launches']} launches, host sync {v_['host_sync']}, "
        f"{v_['wall_ms'] * 1e3:.0f} us wall" for k_, v_ in prep.items() if k_ != "graph"),
        f"CUDA graph of a whole decode step (compile_mask + attention, B=8, 32k): replay equals eager: "
        f"{prep['graph']['replay_equals_eager']}, {prep['graph']['replay_ms']:.3f} ms per replay.", ""]
    open(os.path.join(args.out, "inference.md"), "w").write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
