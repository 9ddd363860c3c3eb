"""End-to-end transformers benchmark: attn_implementation "maskattn" vs "flex_attention" vs "sdpa".

A Llama-style model (random init, bf16, 8 layers, hidden 2048, 16 query heads / 8 KV heads,
head dim 128) on CUDA, all implementations in the same process and on the same weights
(switched with ``model.set_attn_implementation``):

* ``train``: one training step (forward + backward, no optimizer) on 32k packed tokens, batch 1,
  documents marked by ``position_ids`` resets (lengths ~ Exp(mean 1024), min 16, seed 0: the
  "documents" family of docs/semantics.md). transformers detects the packing from the positions and
  asks each implementation for a causal-within-document mask (sdpa: a dense 32k x 32k mask).
* ``prefill``: one forward over 8k and 32k tokens of a single sequence into a fresh DynamicCache,
  ``logits_to_keep=1`` (plain causal attention).
* ``generate`` (``--generate``): a ~1B-parameter model of the same shape with ``--gen-layers``
  layers, greedy ``generate`` of 256 new tokens after an 8k-token prompt, batch 1 and 8, with a
  dynamic and a static cache (eager; tokens/s counts new tokens only), and time-to-first-token
  (``max_new_tokens=1``).

Each (workload, implementation) is warmed up (compilation of flex_attention and of the Triton
kernels happens there), then timed ``--repeats`` times with ``torch.cuda.synchronize``; the table
reports the median, tokens/s and the peak memory. The generate workloads alternate the
implementations from run to run (host-bound runs of seconds: the host's speed drifts). A failure (e.g. sdpa running out of memory on
the dense packed mask) is recorded and the run goes on.

    python benchmarks/bench_transformers.py            # full run
    python benchmarks/bench_transformers.py --quick    # 2 layers, 8k train tokens, prefill 2k/8k, fewer repeats

Writes ``benchmarks/results/transformers.md`` and ``.json`` (GPU name, torch / triton /
transformers / maskattn versions with every table).
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import statistics
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import torch  # noqa: E402

IMPLS = ("maskattn", "flex_attention", "sdpa")


def log(*args):
    print(f"[{time.strftime('%H:%M:%S')}]", *args, flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small, fast run (2 layers, 8k train, prefill 2k/8k)")
    p.add_argument("--impls", default=",".join(IMPLS), help="comma-separated attn_implementations")
    p.add_argument("--layers", type=int, default=None)
    p.add_argument("--hidden", type=int, default=2048)
    p.add_argument("--heads", type=int, default=16)
    p.add_argument("--kv-heads", type=int, default=8)
    p.add_argument("--intermediate", type=int, default=5632)
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--train-tokens", type=int, default=None)
    p.add_argument("--prefill", default=None, help="comma-separated prefill lengths")
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--generate", action="store_true", help="also the generate workloads (separate, deeper model)")
    p.add_argument("--gen-layers", type=int, default=16, help="layers of the generate model (16: ~0.9B parameters)")
    p.add_argument("--gen-prompt", type=int, default=8192)
    p.add_argument("--gen-new", type=int, default=256)
    p.add_argument("--gen-batches", default="1,8")
    p.add_argument("--gen-caches", default="dynamic,static", help="comma-separated: dynamic, static")
    p.add_argument("--skip-train-prefill", action="store_true")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "transformers"),
                   help="output path without extension (.md and .json are written)")
    a = p.parse_args(argv)
    quick = a.quick
    a.layers = a.layers or (2 if quick else 8)
    a.train_tokens = a.train_tokens or (8192 if quick else 32768)
    a.prefill = [int(x) for x in (a.prefill or ("2048,8192" if quick else "8192,32768")).split(",")]
    a.warmup = a.warmup if a.warmup is not None else (1 if quick else 2)
    a.repeats = a.repeats or (3 if quick else 5)
    a.impls = [x.strip() for x in a.impls.split(",") if x.strip()]
    return a


def versions() -> dict:
    import triton
    import transformers

    import maskattn
    return {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "triton": triton.__version__, "transformers": transformers.__version__, "maskattn": maskattn.__version__,
            "python": platform.python_version(), "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "dynamo_recompile_limit": torch._dynamo.config.cache_size_limit}


def build_model(a):
    import transformers

    cfg = transformers.LlamaConfig(vocab_size=a.vocab, hidden_size=a.hidden, intermediate_size=a.intermediate,
                                   num_hidden_layers=a.layers, num_attention_heads=a.heads,
                                   num_key_value_heads=a.kv_heads, max_position_embeddings=max(65536, a.train_tokens),
                                   attention_dropout=0.0)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM._from_config(cfg, attn_implementation="sdpa", dtype=torch.bfloat16)
    return model.cuda()


def packed_inputs(a):
    from benchmarks import families

    lens = torch.from_numpy(families.document_lengths(a.train_tokens).copy())
    pos = torch.cat([torch.arange(int(n)) for n in lens])[None].cuda()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, a.vocab, (1, a.train_tokens), generator=g).cuda()
    return ids, pos, len(lens)


def time_it(fn, warmup: int, repeats: int):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times, torch.cuda.max_memory_allocated() / 2**30


def run_one(model, impl, workload, tokens, fn, a):
    import transformers  # noqa: F401

    row = {"workload": workload, "impl": impl, "tokens": tokens}
    log(f"{workload}: {impl} ...")
    try:
        model.set_attn_implementation(impl)
        times, peak = time_it(fn, a.warmup, a.repeats)
        med = statistics.median(times)
        row.update(median_s=med, tokens_per_s=tokens / med, peak_mem_gib=peak, times_s=times)
        log(f"{workload}: {impl}: {med * 1e3:.1f} ms, {tokens / med:,.0f} tok/s, peak {peak:.1f} GiB")
    except Exception as e:  # OOM of a dense mask, a compile failure, ...: record it and go on
        record_failure(row, e)
    finally:
        model.zero_grad(set_to_none=True)
        gc.collect()
        torch.cuda.empty_cache()
    return row


def record_failure(row: dict, e: Exception) -> None:
    """A failed run: its error kind and first line in ``row["error"]``, logged with a short traceback."""
    kind = "OOM" if isinstance(e, torch.OutOfMemoryError) else type(e).__name__
    row["error"] = f"{kind}: {str(e).splitlines()[0][:300] if str(e) else ''}"
    log(f"{row['workload']}: {row['impl']}: FAILED {row['error']}")
    traceback.print_exc(limit=3)


def dynamo_activity() -> tuple[int, int]:
    """(graph breaks, graphs compiled) so far in this process, from Dynamo's counters: a compiled
    generate step (static cache) that breaks into many graphs, or whose frames hit the recompile
    limit and run eagerly, times something else than one compiled step."""
    from torch._dynamo.utils import counters
    return sum(counters["graph_break"].values()), counters["stats"]["unique_graphs"]


def run_interleaved(model, impls, workload, tokens, fn, a):
    """Like ``run_one`` for every implementation, but the timed runs alternate between them
    (round r runs each once, in an order that reverses every round): a generate run is host-bound
    and takes seconds, and the host's speed drifts over minutes, which would favour whichever
    implementation happens to run in a fast stretch."""
    rows = {impl: {"workload": workload, "impl": impl, "tokens": tokens, "times_s": [], "peak_mem_gib": 0.0,
                   "graph_breaks": 0, "graphs_compiled": 0} for impl in impls}
    live = list(impls)
    for rnd in range(a.warmup + a.repeats):  # the first rounds warm up
        for impl in (list(live) if rnd % 2 == 0 else live[::-1]):
            row = rows[impl]
            try:
                model.set_attn_implementation(impl)
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                before = dynamo_activity()
                t0 = time.perf_counter()
                fn()
                torch.cuda.synchronize()
                elapsed = time.perf_counter() - t0
                breaks, graphs = (n - m for n, m in zip(dynamo_activity(), before))
                row["graph_breaks"] += breaks
                row["graphs_compiled"] += graphs
                if rnd >= a.warmup:
                    row["times_s"].append(elapsed)
                    row["peak_mem_gib"] = max(row["peak_mem_gib"], torch.cuda.max_memory_allocated() / 2**30)
            except Exception as e:  # recorded, and that implementation leaves the rounds
                record_failure(row, e)
                live.remove(impl)
            finally:
                gc.collect()
                torch.cuda.empty_cache()
    for impl, row in rows.items():
        if "error" not in row:
            med = statistics.median(row["times_s"])
            row.update(median_s=med, tokens_per_s=tokens / med)
            log(f"{workload}: {impl}: {med * 1e3:.1f} ms, {tokens / med:,.0f} tok/s, peak {row['peak_mem_gib']:.1f} GiB "
                f"(runs: {', '.join(f'{t * 1e3:.0f}' for t in row['times_s'])} ms)")
    return [rows[impl] for impl in impls]


def write_results(a, meta, rows):
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out + ".json", "w") as f:
        json.dump({"meta": meta, "config": {k: v for k, v in vars(a).items() if k != "out"}, "results": rows}, f,
                  indent=1)
    by = {(r["workload"], r["impl"]): r for r in rows}
    lines = ["# transformers end-to-end: maskattn vs flex_attention vs sdpa", "",
             f"GPU: {meta['gpu']}; torch {meta['torch']} (CUDA {meta['cuda']}), triton {meta['triton']}, "
             f"transformers {meta['transformers']}, maskattn {meta['maskattn']}; {meta['date']}", "",
             f"Model: Llama-style, random init, bf16, {a.layers} layers, hidden {a.hidden}, {a.heads} query heads / "
             f"{a.kv_heads} KV heads (head dim {a.hidden // a.heads}), MLP {a.intermediate}, vocab {a.vocab}. "
             f"Median of {a.repeats} runs after {a.warmup} warm-up(s); peak = torch.cuda.max_memory_allocated.", "",
             f"- train: forward + backward on {a.train_tokens} packed tokens, batch 1, {meta.get('documents', '?')} "
             "documents (position_ids resets; lengths ~ Exp(1024), min 16, seed 0)",
             "- prefill-L: forward of one L-token sequence into a DynamicCache, logits_to_keep=1 (causal)",
             f"- generate-B<b>-<cache>: greedy generate of {a.gen_new} new tokens after a {a.gen_prompt}-token prompt, "
             f"{a.gen_layers}-layer model ({meta.get('generate_params_M', '?')}M parameters), eager; tokens/s = new tokens; "
             "ttft-*: the same with one new token (time to first token)", "",
             "| workload | impl | time (ms) | tokens/s | peak mem (GiB) | speedup of maskattn |",
             "|---|---|---:|---:|---:|---:|"]
    for w in dict.fromkeys(r["workload"] for r in rows):
        ours = by.get((w, "maskattn"), {})
        for impl in a.impls:
            r = by.get((w, impl))
            if r is None:
                continue
            if "error" in r:
                lines.append(f"| {w} | {impl} | failed: {r['error'][:80]} | | | |")
                continue
            sp = ""
            if impl != "maskattn" and "median_s" in ours:
                sp = f"{r['median_s'] / ours['median_s']:.2f}x"
            lines.append(f"| {w} | {impl} | {r['median_s'] * 1e3:.1f} | {r['tokens_per_s']:,.0f} | "
                         f"{r['peak_mem_gib']:.1f} | {sp} |")
    lines += ["", "Speedup of maskattn = that implementation's time / maskattn's time (> 1: maskattn is faster)."]
    compiled = [r for r in rows if r.get("graphs_compiled") or r.get("graph_breaks")]
    if compiled:
        lines += ["", "torch.compile during the generate rows (all runs, warm-up included; transformers compiles "
                  "the decode step of a static cache): " + "; ".join(
                      f"{r['workload']} {r['impl']}: {r['graphs_compiled']} graphs, {r['graph_breaks']} graph breaks"
                      for r in compiled)]
    with open(a.out + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    log(f"wrote {a.out}.md and {a.out}.json")


def main(argv=None):
    a = parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("bench_transformers.py needs a CUDA GPU (torch.cuda.is_available() is False)")
    import maskattn.integrations.transformers  # noqa: F401  registers "maskattn"
    from benchmarks.gpu_setup import raise_recompile_limits

    raise_recompile_limits()  # flex_attention and static-cache generate recompile per implementation
    meta = versions()
    log("versions:", meta)
    rows = []
    if not a.skip_train_prefill:
        model = build_model(a)
        log(f"model: {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters")
        train_and_prefill(a, meta, model, rows)
        del model
        gc.collect()
        torch.cuda.empty_cache()
    if a.generate:
        generate_workloads(a, meta, rows)
    log("done")


def generate_workloads(a, meta, rows):
    """Greedy generation after a long prompt: tokens/s of the new tokens, and time to first token."""
    import copy

    from transformers import GenerationConfig

    ga = copy.copy(a)
    ga.layers = a.gen_layers
    model = build_model(ga).eval()
    meta["generate_params_M"] = round(sum(p.numel() for p in model.parameters()) / 1e6)
    log(f"generate model: {meta['generate_params_M']}M parameters")
    for batch in (int(x) for x in a.gen_batches.split(",")):
        g = torch.Generator().manual_seed(2)
        prompt = torch.randint(0, a.vocab, (batch, a.gen_prompt), generator=g).cuda()
        for cache in a.gen_caches.split(","):
            for new, label in ((a.gen_new, f"generate-B{batch}-{cache}"), (1, f"ttft-B{batch}-{cache}")):
                cfg = GenerationConfig(max_new_tokens=new, min_new_tokens=new, do_sample=False,
                                       cache_implementation=cache if cache == "static" else None, pad_token_id=0)

                @torch.no_grad()
                def gen():
                    model.generate(prompt, attention_mask=torch.ones_like(prompt), generation_config=cfg)

                rows.extend(run_interleaved(model, a.impls, label, batch * new, gen, a))
                write_results(a, meta, rows)


def train_and_prefill(a, meta, model, rows):
    ids, pos, n_docs = packed_inputs(a)
    meta["documents"] = n_docs
    model.train()

    def train_step():
        out = model(input_ids=ids, position_ids=pos, labels=ids, use_cache=False)
        out.loss.backward()
        model.zero_grad(set_to_none=True)

    for impl in a.impls:
        rows.append(run_one(model, impl, "train", a.train_tokens, train_step, a))
        write_results(a, meta, rows)

    model.eval()
    from transformers import DynamicCache

    for L in a.prefill:
        g = torch.Generator().manual_seed(1)
        pids = torch.randint(0, a.vocab, (1, L), generator=g).cuda()

        @torch.no_grad()
        def prefill():
            model(input_ids=pids, past_key_values=DynamicCache(config=model.config), use_cache=True, logits_to_keep=1)

        for impl in a.impls:
            rows.append(run_one(model, impl, f"prefill-{L}", L, prefill, a))
            write_results(a, meta, rows)


if __name__ == "__main__":
    main()
