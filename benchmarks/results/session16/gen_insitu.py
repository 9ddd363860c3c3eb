"""In-situ host time of the attention and mask functions inside generate (dynamic cache, 8k prompt,
16 layers), maskattn against sdpa, with the two implementations run in alternation (a host's speed
drifts over minutes): per new token, the wall time, the mask function's host time, and the attention
function's host time split into the step's first layer (maskattn records its launch there) and the
other 15 (replays)."""
import os, statistics, sys, time, types
import torch
sys.path.insert(0, os.getcwd())
import maskattn.integrations.transformers as mt  # noqa: F401  registers "maskattn"
from benchmarks.bench_transformers import build_model
from transformers import AttentionInterface, AttentionMaskInterface, GenerationConfig
from transformers import masking_utils as mu
from transformers.integrations.sdpa_attention import sdpa_attention_forward

a = types.SimpleNamespace(vocab=32000, hidden=2048, intermediate=5632, layers=16, heads=16, kv_heads=8, train_tokens=32768)
model = build_model(a).eval()
print("GPU", torch.cuda.get_device_name(), torch.__version__, flush=True)
calls = []  # (name, seconds)


def timed(name, fn):
    def wrap(*args, **kw):
        t0 = time.perf_counter()
        r = fn(*args, **kw)
        calls.append((name, time.perf_counter() - t0))
        return r
    return wrap


AttentionInterface.register("maskattn", timed("attn", mt.attention_function))
AttentionMaskInterface.register("maskattn", timed("mask", mt.mask_function))
AttentionInterface.register("sdpa", timed("attn", sdpa_attention_forward))
AttentionMaskInterface.register("sdpa", timed("mask", mu.sdpa_mask))
NEW = 33
for B in (1, 8):
    prompt = torch.randint(0, 32000, (B, 8192), generator=torch.Generator().manual_seed(2)).cuda()
    res = {impl: [] for impl in ("maskattn", "sdpa")}
    for rep in range(4):
        for impl in ("maskattn", "sdpa") if rep % 2 == 0 else ("sdpa", "maskattn"):
            model.set_attn_implementation(impl)
            out = {}
            for new in (1, NEW):
                cfg = GenerationConfig(max_new_tokens=new, min_new_tokens=new, do_sample=False, pad_token_id=0)
                with torch.no_grad():
                    torch.cuda.synchronize(); calls.clear(); t0 = time.perf_counter()
                    model.generate(prompt, attention_mask=torch.ones_like(prompt), generation_config=cfg)
                    torch.cuda.synchronize()
                out[new] = (time.perf_counter() - t0, list(calls))
            if rep == 0:
                continue  # warm-up
            steps = NEW - 1
            decode = out[NEW][1][len(out[1][1]):]  # the calls of the decode steps (after the prefill's)
            attn = [s for n, s in decode if n == "attn"]
            first = attn[0::16]
            rest = [s for i, s in enumerate(attn) if i % 16]
            res[impl].append(((out[NEW][0] - out[1][0]) / steps * 1e3,
                              sum(s for n, s in decode if n == "mask") / steps * 1e6,
                              statistics.median(first) * 1e6, statistics.median(rest) * 1e6,
                              sum(attn) / steps * 1e3))
    for impl, rows in res.items():
        med = [statistics.median(c) for c in zip(*rows)]
        print(f"B={B} {impl:8s}: wall {med[0]:6.2f} ms/token (runs: {', '.join(f'{r[0]:.2f}' for r in rows)}); "
              f"mask fn {med[1]:6.1f} us/token; attention fn: first layer {med[2]:6.1f} us, others {med[3]:6.1f} us "
              f"(median), {med[4]:.2f} ms/token in all", flush=True)
