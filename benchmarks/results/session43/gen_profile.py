"""Session 43: why HF generate (dynamic cache, B=1, 8k prompt) ran 0.72x sdpa on branch s42-unmasked-decode.

Times 64 new tokens per impl (maskattn / sdpa alternated, 3 rounds), then profiles one maskattn run:
calls per kernel entry (Triton JIT launches, split_kv recordings, replays, map compiles) and the top
host functions (cProfile, tottime).
"""
import collections
import cProfile
import os
import pstats
import sys
import time

import torch

sys.path.insert(0, os.getcwd())
sys.path.insert(0, os.environ.get("PKG_ROOT", os.getcwd()))  # PKG_ROOT: another copy of the package (main)
import maskattn  # noqa: E402
import maskattn.integrations.transformers  # noqa: E402,F401
from maskattn import api  # noqa: E402
from maskattn.kernels import decode  # noqa: E402
try:
    from maskattn.kernels import unmasked_decode  # noqa: E402
except ImportError:  # main has no such path
    unmasked_decode = None
from benchmarks import bench_transformers as bt  # noqa: E402
import triton  # noqa: E402
from transformers import GenerationConfig  # noqa: E402

a = bt.parse_args(["--gen-layers", "16"])
a.layers = 16
model = bt.build_model(a).eval()
new = int(os.environ.get("NEW", "64"))
batch = int(os.environ.get("B", "1"))
prompt = torch.randint(0, a.vocab, (batch, 8192), generator=torch.Generator().manual_seed(2)).cuda()
cfg = GenerationConfig(max_new_tokens=new, min_new_tokens=new, do_sample=False, pad_token_id=0)


@torch.no_grad()
def gen(impl):
    model.set_attn_implementation(impl)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    model.generate(prompt, attention_mask=torch.ones_like(prompt), generation_config=cfg)
    torch.cuda.synchronize()
    return time.perf_counter() - t0


for impl in ("maskattn", "sdpa"):
    gen(impl)
times = collections.defaultdict(list)
for _ in range(3):
    for impl in ("maskattn", "sdpa"):
        times[impl].append(gen(impl))
for impl, ts in times.items():
    print(f"B={batch} {new} tokens {impl}: " + ", ".join(f"{t * 1e3:.0f}" for t in ts) + " ms", flush=True)

counts = collections.Counter()


def counted(owner, name, label):
    fn = getattr(owner, name)

    def wrapper(*args, **kw):
        counts[label] += 1
        return fn(*args, **kw)
    setattr(owner, name, wrapper)


counted(decode, "split_kv", "decode.split_kv (record)")
if unmasked_decode is not None:
    counted(unmasked_decode, "replay_recorded", "unmasked_decode.replay_recorded")
    counted(unmasked_decode, "forward", "unmasked_decode.forward")
counted(api, "_block_map", "api._block_map")
run = triton.runtime.jit.JITFunction.run


def jit_run(self, *args, **kw):
    counts["jit " + self.fn.__name__] += 1
    return run(self, *args, **kw)


triton.runtime.jit.JITFunction.run = jit_run
prof = cProfile.Profile()
prof.enable()
t = gen("maskattn")
prof.disable()
print(f"profiled maskattn run ({maskattn.__file__}): {t * 1e3:.0f} ms; "
      f"plans {len(unmasked_decode._PLANS) if unmasked_decode else '-'}")
for k, n in sorted(counts.items()):
    print(f"  {n:6d} {k}")
st = pstats.Stats(prof)
st.sort_stats("tottime").print_stats(22)
st.sort_stats("cumulative").print_stats(30)
