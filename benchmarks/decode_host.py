"""Where a Hugging Face decode step spends its time: host time per attention call, and one
model decode step (eager, dynamic cache) per attn_implementation, host vs GPU.

* ``call``: B x (Hq=16, Hkv=8) x 1 query x ``--kv`` keys, D=128, bf16: host microseconds per call
  (many calls queued without a sync; the GPU work per call is a few microseconds, so the wall
  time per call is the host time) for maskattn (precompiled map), the plug-in's
  attention_function (ModelMask), its mask_function, SDPA and compiled flex_attention.
* ``step``: a Llama-style model (``--layers``), prefill ``--kv`` tokens into a DynamicCache, then
  ``--steps`` single-token forwards with a sync after each (as generate does): ms per step,
  and the CUDA kernel time per step from the profiler.
* ``profile``: cProfile of maskattn's call path (top functions by own time).

    PYTHONPATH=. python benchmarks/decode_host.py [--batches 1,8] [--out DIR]
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import maskattn as ma  # noqa: E402

HQ, HKV, D = 16, 8, 128


def per_call_us(fn, n=300):
    for _ in range(20):
        fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    host = (time.perf_counter() - t0) / n * 1e6
    torch.cuda.synchronize()
    wall = (time.perf_counter() - t0) / n * 1e6
    return host, wall


def call_costs(batch, kv, log):
    import torch.nn.functional as F
    from benchmarks.gpu_setup import flex_and_timer

    import maskattn.integrations.transformers as mt

    dev = "cuda"
    q = torch.randn(batch, HQ, 1, D, device=dev, dtype=torch.bfloat16)
    k = torch.randn(batch, HKV, kv, D, device=dev, dtype=torch.bfloat16)
    v = torch.randn_like(k)
    bm = ma.compile_mask(ma.causal(), 1, kv, device=dev, block_q=16)
    mm = mt.mask_function(batch, 1, kv, q_offset=kv - 1, kv_offset=0, attention_mask=torch.ones(batch, kv, dtype=torch.bool, device=dev), device=dev)
    module = torch.nn.Module()
    flex, create_block_mask, _ = flex_and_timer("decode_host.py")
    fbm = create_block_mask(lambda b, h, qi, ki: qi + kv - 1 >= ki, None, None, 1, kv, device=dev)
    rows = {
        "maskattn.attention (BlockMap)": lambda: ma.attention(q, k, v, bm),
        "plug-in attention_function": lambda: mt.attention_function(module, q, k, v, mm, scaling=D ** -0.5),
        "plug-in mask_function (2-D ones)": lambda: mt.mask_function(
            batch, 1, kv, q_offset=kv - 1, kv_offset=0, attention_mask=torch.ones(batch, kv, dtype=torch.bool, device=dev),
            device=dev),
        "sdpa (enable_gqa)": lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True),
        "flex (compiled)": lambda: flex(q, k, v, block_mask=fbm, enable_gqa=True),
    }
    for name, fn in rows.items():
        host, wall = per_call_us(fn)
        log(f"call B={batch} kv={kv} | {name:34s} | host {host:7.1f} us | wall {wall:7.1f} us")
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(200):
        ma.attention(q, k, v, bm)
    pr.disable()
    torch.cuda.synchronize()
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(25)
    log(s.getvalue())


def model_steps(batch, kv, layers, steps, impls, log):
    import transformers
    from transformers import DynamicCache

    cfg = transformers.LlamaConfig(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=layers,
                                   num_attention_heads=HQ, num_key_value_heads=HKV, max_position_embeddings=65536,
                                   attention_dropout=0.0)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM._from_config(cfg, attn_implementation="sdpa", dtype=torch.bfloat16).cuda().eval()
    ids = torch.randint(0, 32000, (batch, kv), device="cuda")
    for impl in impls:
        model.set_attn_implementation(impl)
        with torch.no_grad():
            cache = DynamicCache(config=cfg)
            am = torch.ones(batch, kv, dtype=torch.long, device="cuda")
            out = model(input_ids=ids, attention_mask=am, past_key_values=cache, use_cache=True, logits_to_keep=1)
            tok = out.logits[:, -1:].argmax(-1)

            def step():
                nonlocal tok, am
                am = torch.cat([am, am.new_ones(batch, 1)], 1)
                o = model(input_ids=tok, attention_mask=am, past_key_values=cache, use_cache=True)
                tok = o.logits[:, -1:].argmax(-1)
                torch.cuda.synchronize()

            for _ in range(3):
                step()
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            ms = (time.perf_counter() - t0) / steps * 1e3
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
                for _ in range(5):
                    step()
            evs = [e for e in prof.key_averages() if e.device_type == torch.autograd.DeviceType.CUDA]
            gpu_ms = sum(e.self_device_time_total for e in evs) / 5 / 1e3
            top = sorted(evs, key=lambda e: -e.self_device_time_total)[:6]
        log(f"step B={batch} kv={kv} layers={layers} | {impl:14s} | {ms:7.3f} ms/step | GPU kernels {gpu_ms:6.3f} ms/step | "
            + "; ".join(f"{e.key[:40]} {e.self_device_time_total / 5 / 1e3:.3f}" for e in top))
        del cache
        torch.cuda.empty_cache()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batches", default="1,8")
    p.add_argument("--kv", type=int, default=8192)
    p.add_argument("--layers", type=int, default=16)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--impls", default="maskattn,sdpa,flex_attention")
    p.add_argument("--calls-only", action="store_true", help="skip the model decode steps")
    p.add_argument("--out", default=None)
    a = p.parse_args()
    import maskattn.integrations.transformers  # noqa: F401

    lines = []

    def log(s):
        print(s, flush=True)
        lines.append(s)

    log(f"GPU {torch.cuda.get_device_name()}; torch {torch.__version__}")
    for b in (int(x) for x in a.batches.split(",")):
        call_costs(b, a.kv, log)
    for b in (int(x) for x in a.batches.split(",")) if not a.calls_only else ():
        model_steps(b, a.kv, a.layers, a.steps, a.impls.split(","), log)
    if a.out:
        open(os.path.join(a.out, "decode_host.log"), "w").write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
