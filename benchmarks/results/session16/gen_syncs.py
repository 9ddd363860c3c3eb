"""Why a generate step with maskattn takes longer than with sdpa (dynamic cache, 8k prompt, 16 layers):
host-side CUDA runtime calls per new token (syncs, copies, allocations, launches) from torch.profiler,
and the Python stacks of every synchronising call in maskattn's code (sync debug mode)."""
import os, sys, traceback, types, warnings
import torch
sys.path.insert(0, os.getcwd())
import maskattn.integrations.transformers as mt  # noqa: F401  registers "maskattn"
from benchmarks.bench_transformers import build_model
from transformers import GenerationConfig

a = types.SimpleNamespace(vocab=32000, hidden=2048, intermediate=5632, layers=16, heads=16, kv_heads=8, train_tokens=32768)
model = build_model(a).eval()
print("GPU", torch.cuda.get_device_name(), torch.__version__, flush=True)
B = int(os.environ.get("B", "8"))
prompt = torch.randint(0, 32000, (B, 8192), generator=torch.Generator().manual_seed(2)).cuda()
cfg = GenerationConfig(max_new_tokens=9, min_new_tokens=9, do_sample=False, pad_token_id=0)
for impl in ("maskattn", "sdpa"):
    model.set_attn_implementation(impl)
    with torch.no_grad():
        model.generate(prompt, attention_mask=torch.ones_like(prompt), generation_config=cfg)
        torch.cuda.synchronize()
        acts = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
        with torch.profiler.profile(activities=acts) as prof:
            model.generate(prompt, attention_mask=torch.ones_like(prompt), generation_config=cfg)
            torch.cuda.synchronize()
    evs = prof.key_averages()
    rt = [e for e in evs if e.key.startswith("cuda") and e.device_type == torch.autograd.DeviceType.CPU]
    print(f"== B={B} {impl}: CUDA runtime calls over prefill + 8 tokens (count, host ms)")
    for e in sorted(rt, key=lambda e: -e.self_cpu_time_total)[:12]:
        print(f"   {e.key:40s} x{e.count:6d} {e.self_cpu_time_total / 1e3:8.2f} ms")
    gpu = [e for e in evs if e.device_type == torch.autograd.DeviceType.CUDA]
    print(f"   GPU kernel time total {sum(e.self_device_time_total for e in gpu) / 1e3:.1f} ms, "
          f"launches {sum(e.count for e in gpu)}")
    cpu_ops = [e for e in evs if e.device_type == torch.autograd.DeviceType.CPU and e.key.startswith("aten::")]
    print("   top aten ops by self host time:", "; ".join(f"{e.key} x{e.count} {e.self_cpu_time_total/1e3:.1f} ms"
                                                 for e in sorted(cpu_ops, key=lambda e: -e.self_cpu_time_total)[:10]))
# where maskattn synchronises during decode steps
model.set_attn_implementation("maskattn")
seen = {}
def show(message, category, filename, lineno, file=None, line=None):
    stack = "".join(traceback.format_stack(limit=14)[:-2])
    key = stack[-600:]
    seen[key] = seen.get(key, 0) + 1
warnings.showwarning = show
with torch.no_grad():
    torch.cuda.set_sync_debug_mode("warn")
    model.generate(prompt, attention_mask=torch.ones_like(prompt), generation_config=cfg)
    torch.cuda.set_sync_debug_mode(0)
print(f"== synchronising calls during maskattn generate (9 tokens): {len(seen)} distinct stacks")
for st, n in sorted(seen.items(), key=lambda x: -x[1]):
    print(f"--- x{n}\n{st[-1500:]}")
