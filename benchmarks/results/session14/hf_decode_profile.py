"""Where a B=1 decode step's host time goes with the maskattn plug-in vs sdpa (dynamic cache, 8k prompt)."""
import cProfile, io, os, pstats, sys, time
import torch
sys.path.insert(0, os.getcwd())
import maskattn.integrations.transformers  # noqa: F401
from transformers import GenerationConfig
from benchmarks.bench_transformers import build_model, parse_args

a = parse_args(["--skip-train-prefill"])
a.layers = 16
model = build_model(a).eval()
prompt = torch.randint(0, a.vocab, (1, 8192), generator=torch.Generator().manual_seed(2)).cuda()

def gen(n):
    cfg = GenerationConfig(max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0)
    with torch.no_grad():
        model.generate(prompt, attention_mask=torch.ones_like(prompt), generation_config=cfg)
    torch.cuda.synchronize()

for impl in ("maskattn", "sdpa", "maskattn", "sdpa"):
    model.set_attn_implementation(impl)
    gen(4)
    t0 = time.perf_counter(); gen(1); t1 = time.perf_counter(); gen(65); t2 = time.perf_counter()
    print(f"{impl}: per new token {(t2 - t1 - (t1 - t0)) / 64 * 1e3:.2f} ms (prefill+1: {(t1 - t0) * 1e3:.1f} ms)", flush=True)
for impl in ("maskattn", "sdpa"):
    model.set_attn_implementation(impl)
    gen(4)
    pr = cProfile.Profile(); pr.enable(); gen(33); pr.disable()
    s = io.StringIO(); st = pstats.Stats(pr, stream=s); st.sort_stats("cumulative").print_stats(45)
    print(f"==== {impl} cumulative", s.getvalue()[-9000:], flush=True)
    s = io.StringIO(); st = pstats.Stats(pr, stream=s); st.sort_stats("tottime").print_stats(25)
    print(f"==== {impl} tottime", s.getvalue()[-5000:], flush=True)
