"""Session 42 (for the next session): paged decode, main (``.ab/maskattn_main``) against this
branch, same process: one new token per request, B=8, 32 / 8 heads, D=128, bf16, page size 16,
kv_lens 32k +- a few hundred (GPU time by CUDA events, 3 interleaved rounds of 30 calls; host time
per call with the GPU held behind a sleep). Outputs compared with each other.

Branch: no map (``unmasked_decode``, KV_ENDS), 32-key blocks for gathered pages, replays.
Main: a map per call (compile_single_row), 128-key blocks (3.1 KB of stack on sm_90a), no replays.
Prediction: host time per call main ~300+ us -> branch ~30 us; GPU time: unknown (the stack
spills of main's config against 4x more loop steps), floor 0.358 ms at 3 TB/s.
"""
import os
import sys

import torch

sys.path.insert(0, os.getcwd())
from benchmarks.ab import env_packages, host_us, interleaved_medians, print_setup  # noqa: E402

PKGS = env_packages()
print_setup("|", " ".join(f"{n}={p.__file__}" for n, p in PKGS.items()))
dev, bf = "cuda", torch.bfloat16
g = torch.Generator(device=dev).manual_seed(0)
B, HQ, HKV, D, PAGE, MAX_PAGES = 8, 32, 8, 128, 16, 2100
lens = torch.tensor([32768 - 37 * i for i in range(B)], device=dev)
pool = B * MAX_PAGES
k_cache = torch.randn(pool, HKV, PAGE, D, device=dev, dtype=bf, generator=g)
v_cache = torch.randn_like(k_cache)
table = torch.randperm(pool, device=dev, generator=g).view(B, MAX_PAGES).to(torch.int32)
q = torch.randn(B, HQ, 1, D, device=dev, dtype=bf, generator=g)
outs = {n: p.paged_attention(q, k_cache, v_cache, page_table=table, kv_lens=lens) for n, p in PKGS.items()}
names = list(outs)
print(f"|{names[0]} - {names[-1]}| = {(outs[names[0]].float() - outs[names[-1]].float()).abs().max().item():.2e}")
fns = {n: (lambda p=p: p.paged_attention(q, k_cache, v_cache, page_table=table, kv_lens=lens)) for n, p in PKGS.items()}
for n, t in interleaved_medians(fns, rounds=3, reps=30).items():
    print(f"{n}: GPU {t:.1f} us per call (events), host {host_us(fns[n]):.0f} us per call", flush=True)
