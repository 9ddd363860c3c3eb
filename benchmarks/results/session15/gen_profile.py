"""Where generate's time goes per new token (dynamic cache, 8k prompt, 16-layer model of bench_transformers):
wall ms per token, CUDA kernel ms per token and launches per token (torch.profiler), top kernels, and the
host time of maskattn's mask function and attention function per token; maskattn vs sdpa at B=1 and B=8."""
import os, sys, time, types
import torch
sys.path.insert(0, os.getcwd())
import maskattn.integrations.transformers as mt  # registers "maskattn"
from benchmarks.bench_transformers import build_model
from transformers import GenerationConfig

a = types.SimpleNamespace(vocab=32000, hidden=2048, intermediate=5632, layers=16, heads=16, kv_heads=8, train_tokens=32768)
model = build_model(a).eval()
print("GPU", torch.cuda.get_device_name(), torch.__version__, flush=True)
timers = {}
def timed(name, fn):
    def wrap(*args, **kw):
        t0 = time.perf_counter(); r = fn(*args, **kw); timers[name] = timers.get(name, 0.0) + time.perf_counter() - t0
        return r
    return wrap
from transformers import AttentionInterface, AttentionMaskInterface
AttentionInterface.register("maskattn", timed("attention_function", mt.attention_function))
AttentionMaskInterface.register("maskattn", timed("mask_function", mt.mask_function))
for B in (1, 8):
    prompt = torch.randint(0, 32000, (B, 8192), generator=torch.Generator().manual_seed(2)).cuda()
    for impl in ("maskattn", "sdpa"):
        model.set_attn_implementation(impl)
        res = {}
        for new in (1, 33):
            cfg = GenerationConfig(max_new_tokens=new, min_new_tokens=new, do_sample=False, pad_token_id=0)
            with torch.no_grad():
                model.generate(prompt, attention_mask=torch.ones_like(prompt), generation_config=cfg)
                torch.cuda.synchronize(); timers.clear(); t0 = time.perf_counter()
                model.generate(prompt, attention_mask=torch.ones_like(prompt), generation_config=cfg)
                torch.cuda.synchronize(); res[new] = (time.perf_counter() - t0, dict(timers))
        wall = (res[33][0] - res[1][0]) / 32 * 1e3
        host = {k: (res[33][1].get(k, 0) - res[1][1].get(k, 0)) / 32 * 1e3 for k in res[33][1]}
        cfg = GenerationConfig(max_new_tokens=9, min_new_tokens=9, do_sample=False, pad_token_id=0)
        with torch.no_grad(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            model.generate(prompt, attention_mask=torch.ones_like(prompt), generation_config=cfg)
        evs = [e for e in prof.key_averages() if e.device_type == torch.autograd.DeviceType.CUDA]
        # the prefill is in there once: report totals minus the biggest (prefill) kernels is messy; give per-kernel counts
        top = sorted(evs, key=lambda e: -e.self_device_time_total)[:8]
        print(f"B={B} {impl:9s}: wall {wall:6.2f} ms/token; host in " + ", ".join(f"{k} {v:.2f} ms/token" for k, v in host.items()), flush=True)
        print("    kernels over prefill + 8 tokens: " + "; ".join(f"{e.key[:38]} x{e.count} {e.self_device_time_total / 1e3:.2f} ms" for e in top), flush=True)
