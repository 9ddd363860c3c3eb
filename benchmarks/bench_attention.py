"""Attention speed: maskattn vs FlexAttention vs SDPA, in one process, on one GPU.

Measures forward, backward alone and forward+backward for the five standard families
(docs/semantics.md) at L = 8k and 32k (B=1, H=16, D=128, bf16), plus sparsity sweeps
(sliding-window sizes, document lengths, random block masks from 1% to 100% tile density).
Times are medians of ``triton.testing.do_bench`` after warm-up, inputs from ``torch.randn``.
Effective TFLOP/s counts allowed pairs only: fwd 4*D*H*pairs/t, bwd 2.5x, fwd+bwd 3.5x.
FlexAttention runs as ``torch.compile(flex_attention, dynamic=False)`` with a ``create_block_mask``
map (one static compile per shape, as a training run of fixed shapes gets; with the default
``dynamic=None`` every size after the first ran a slower dynamic-shape kernel, which made the
flex columns depend on the order of ``--sizes`` before session 28); its compile time is excluded
and its block-mask build time is reported separately.

    PYTHONPATH=. python benchmarks/bench_attention.py [--quick] [--out benchmarks/results] [--update-readme]

``--rounds N`` times every implementation of a case once a round for N rounds (all of them in a
round before the next) and keeps each mode's median over the rounds: under sustained load an H100
runs into its power cap and its SM clock drifts (1575-1950 MHz in session 41), so implementations
timed one after another once each can land on different clocks; interleaved rounds reach them alike.

The forward alone at 128k (causal, sliding, documents):
``--sizes --long 131072 --other-head-dims --no-sweeps --forward-only``. With do_bench's 100 ms
budget a 130 ms call is timed once or twice after warm-up, so those rows are noisier.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import maskattn as ma  # noqa: E402
from benchmarks import families  # noqa: E402

MODES = ("fwd", "bwd", "fwd+bwd")
FLOP_MULT = {"fwd": 1.0, "bwd": 2.5, "fwd+bwd": 3.5}


def log(msg: str) -> None:
    print(msg, flush=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="L=8k only, short sweeps, fewer repeats")
    p.add_argument("--sizes", type=int, nargs="*", default=None, help="sequence lengths (default 8192 32768)")
    p.add_argument("--long", type=int, nargs="*", default=[131072],
                   help="extra lengths for causal, sliding and documents only (default 131072; "
                        "the flag without values runs none)")
    p.add_argument("--other-head-dims", type=int, nargs="*", default=[64, 256],
                   help="extra rows at 32k for causal, sliding and documents with these head dims "
                        "(default 64 256; the flag without values runs none)")
    p.add_argument("--families", nargs="*", default=list(families.FAMILIES))
    p.add_argument("--no-sweeps", action="store_true")
    p.add_argument("--forward-only", action="store_true", help="time the forward alone (e.g. the 128k rows)")
    p.add_argument("--rounds", type=int, default=1,
                   help="time each case's implementations in this many interleaved rounds, medians over rounds")
    p.add_argument("--heads", type=int, default=16)
    p.add_argument("--head-dim", type=int, default=128)
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    p.add_argument("--update-readme", action="store_true", help="write the summary table into README.md")
    p.add_argument("--config", metavar="JSON", help="kernel configs from tune_kernels.py (kernel -> config)")
    p.add_argument("--render", metavar="JSON", help="no GPU run: re-render tables, plots (and README) from a saved JSON")
    return p.parse_args()


class Timer:
    def __init__(self, quick: bool):
        import triton.testing
        self.do_bench = triton.testing.do_bench
        self.warmup, self.rep = (10, 40) if quick else (25, 100)

    def __call__(self, fn) -> float:
        try:
            return float(self.do_bench(fn, warmup=self.warmup, rep=self.rep, return_mode="median"))
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            return float("nan")


def _fa4():
    """FlashAttention-4 (``flash_attn.cute``) when installed: a benchmark anchor, never a dependency."""
    try:
        from flash_attn.cute import flash_attn_func, flash_attn_varlen_func
        return flash_attn_func, flash_attn_varlen_func
    except Exception:  # noqa: BLE001 - any import problem means "not installed here"
        return None


def implementations(q, k, v, bm, flex_block_mask, family, dense_bool, doc_lengths):
    """name -> (forward callable, its leaf inputs, modes to time), all on the same values.
    FA4 takes (B, L, H, D) copies of the inputs (its own leaves, made outside the timing)."""
    flex = implementations.flex
    sdpa = torch.nn.functional.scaled_dot_product_attention
    qkv = (q, k, v)
    # the default backward (one pass, dQ by fp32 reduce-adds on sm_90) and the deterministic one
    # (the portable two kernels); their forward is the same
    impls = {"maskattn": (lambda: ma.attention(q, k, v, bm, deterministic=False), qkv, MODES),
             "maskattn_det": (lambda: ma.attention(q, k, v, bm, deterministic=True), qkv, ("bwd", "fwd+bwd"))}
    if flex_block_mask is not None:
        impls["flex"] = (lambda: flex(q, k, v, block_mask=flex_block_mask), qkv, MODES)
    fa4 = _fa4()
    if fa4 is not None and flex_block_mask is not None:
        impls["flex_flash"] = (lambda: flex(q, k, v, block_mask=flex_block_mask,
                                            kernel_options={"BACKEND": "FLASH"}), qkv, MODES)
    if fa4 is not None and family in ("causal", "sliding", "documents"):
        t = tuple(x.detach().transpose(1, 2).contiguous().requires_grad_() for x in qkv)  # (B, L, H, D)
        func, varlen = fa4
        if family == "causal":
            fn = lambda: func(*t, causal=True)[0].transpose(1, 2)  # noqa: E731
        elif family == "sliding":
            fn = lambda: func(*t, causal=True, window_size=(families.SLIDING_LEFT, 0))[0].transpose(1, 2)  # noqa: E731
        else:
            cu = torch.zeros(len(doc_lengths) + 1, dtype=torch.int32, device=q.device)
            cu[1:] = torch.as_tensor(doc_lengths, device=q.device).cumsum(0)
            m = int(max(doc_lengths))
            tv = tuple(x[0] for x in t)  # (L, H, D): B = 1 packed
            fn = lambda: varlen(*tv, cu_seqlens_q=cu, cu_seqlens_k=cu, max_seqlen_q=m, max_seqlen_k=m,  # noqa: E731
                                causal=True)[0][None].transpose(1, 2)
        impls["fa4"] = (fn, t, MODES)
    if family == "causal":
        impls["sdpa"] = (lambda: sdpa(q, k, v, is_causal=True), qkv, MODES)
    elif dense_bool is not None:
        impls["sdpa"] = (lambda: sdpa(q, k, v, attn_mask=dense_bool), qkv, MODES)
    impls["sdpa_dense"] = (lambda: sdpa(q, k, v), qkv, MODES)  # no mask at all: the ceiling
    return impls


def time_modes(timer, fwd, inputs, do, modes=MODES):
    """fwd, bwd alone (backward of a retained graph) and fwd+bwd, in ms; NaN where it fails."""
    res = {m: float("nan") for m in MODES}
    try:
        if "fwd" in modes:
            res["fwd"] = timer(fwd)
        if "bwd" not in modes and "fwd+bwd" not in modes:  # --forward-only
            return res
        out = fwd()
        res["bwd"] = timer(lambda: torch.autograd.grad(out, inputs, do, retain_graph=True))
        out = None  # release the retained graph before timing fwd+bwd
        res["fwd+bwd"] = timer(lambda: torch.autograd.grad(fwd(), inputs, do))
    except Exception as e:  # noqa: BLE001 - an anchor that cannot run a case gets NaN, the run goes on
        log(f"    ({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})")
        torch.cuda.empty_cache()
    return res


def _median(xs) -> float:
    """The median of the values that are not NaN (a round that failed), NaN if none is."""
    xs = [x for x in xs if not math.isnan(x)]
    return statistics.median(xs) if xs else float("nan")


def time_implementations(timer, impls: dict, do, rounds: int = 1, forward_only: bool = False) -> dict:
    """{name: {mode: ms}} for ``implementations``' dict: ``time_modes`` of every implementation once a
    round, all of them in a round before the next round starts, for ``rounds`` rounds; per mode the
    median over the rounds. ``forward_only``: the forward alone; implementations without it are left out."""
    runs = {}
    for _ in range(rounds):
        for name, (fwd, inputs, modes) in impls.items():
            if forward_only:
                modes = tuple(m for m in modes if m == "fwd")
            if modes:
                runs.setdefault(name, []).append(time_modes(timer, fwd, inputs, do, modes))
    return {name: {m: _median(r[m] for r in res) for m in MODES} for name, res in runs.items()}


def run_case(timer, label, mask, mod, L, args, dense_ok, family=None, extra=None, head_dim=None):
    from torch.nn.attention.flex_attention import create_block_mask
    dev = "cuda"
    H, D = args.heads, head_dim or args.head_dim
    g = torch.Generator(device=dev).manual_seed(0)
    q, k, v = (torch.randn(1, H, L, D, device=dev, generator=g, dtype=torch.bfloat16).requires_grad_() for _ in range(3))
    do = torch.randn(1, H, L, D, device=dev, generator=g, dtype=torch.bfloat16)
    mask = mask.to(dev)
    ma.compile_mask(mask, L, L, device=dev)  # warm-up, like create_block_mask below
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    bm = ma.compile_mask(mask, L, L, device=dev)
    torch.cuda.synchronize()
    t_ma_compile = (time.perf_counter() - t0) * 1e3
    big = L > 32768  # uncompiled create_block_mask builds an L x L tensor
    create_block_mask(mod, None, None, L, L, device=dev, _compile=big)  # warm-up
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fbm = create_block_mask(mod, None, None, L, L, device=dev, _compile=big)
    torch.cuda.synchronize()
    t_flex_mask = (time.perf_counter() - t0) * 1e3
    dense_bool = mask.materialize(L, L, device=dev) if (dense_ok and family != "causal") else None
    pairs = float(bm.num_allowed.sum())
    row = dict(case=label, L=L, D=D, density=bm.density, tile_density=bm.tile_density, pairs=pairs,
               maskattn_compile_ms=t_ma_compile, flex_block_mask_ms=t_flex_mask, times={}, tflops={})
    row.update(extra or {})
    lengths = families.document_lengths(L).tolist() if family == "documents" else None
    impls = implementations(q, k, v, bm, fbm, family, dense_bool, lengths)  # every callable returns (B, H, L, D)
    for name, t in time_implementations(timer, impls, do, args.rounds, args.forward_only).items():
        row["times"][name] = t
        work = pairs if name != "sdpa_dense" else float(L) * L
        row["tflops"][name] = {m: FLOP_MULT[m] * 4 * D * H * work / (t[m] * 1e-3) / 1e12 for m in MODES}
    if fbm is not None:  # sanity check in the same run: both libraries compute the same attention
        with torch.no_grad():
            row["max_abs_diff_vs_flex"] = float((ma.attention(q, k, v, bm) - implementations.flex(
                q, k, v, block_mask=fbm)).abs().max())
    del dense_bool
    torch.cuda.empty_cache()
    ma_t = row["times"]["maskattn"]
    others = [n for n in ("flex", "flex_flash", "fa4", "sdpa") if n in row["times"]]
    log(f"  {label:28s} L={L:6d} D={D} density {row['density']:6.2%} | " + " | ".join(
        f"{m}: ma {ma_t[m]:7.3f} ms " + " ".join(f"{n} x{row['times'][n][m] / ma_t[m]:.2f}" for n in others)
        for m in MODES if not math.isnan(ma_t[m])))
    return row


def random_block_mask(L, tile_density, seed=0, block=128):
    t = -(-L // block)
    g = torch.Generator().manual_seed(seed)
    blocks = torch.rand(t, t, generator=g) < tile_density
    blocks |= torch.eye(t, dtype=torch.bool)  # no empty rows: every query has something to attend
    return blocks


def sweep_cases(L, quick):
    """(label, mask, mask_mod, extra) across sparsity."""
    out = []
    for w in ([256, 1024, 4096] if quick else [128, 256, 512, 1024, 2048, 4096]):
        out.append((f"sweep sliding w={w}", ma.sliding_window(w - 1),
                    (lambda w: lambda b, h, qi, ki: (ki <= qi) & (qi - ki < w))(w), {"sweep": "sliding", "param": w}))
    for mean in ([256, 4096] if quick else [128, 256, 1024, 4096]):
        lens = families.document_lengths(L, mean=mean)
        ids = torch.repeat_interleave(torch.arange(len(lens)), torch.from_numpy(lens.copy())).cuda()
        out.append((f"sweep documents mean={mean}", ma.documents(torch.from_numpy(lens.copy())),
                    (lambda ids: lambda b, h, qi, ki: (ids[qi] == ids[ki]) & (ki <= qi))(ids),
                    {"sweep": "documents", "param": mean}))
    for dens in ([0.01, 0.1, 0.5, 1.0] if quick else [0.01, 0.03, 0.1, 0.3, 0.5, 0.75, 1.0]):
        blocks = random_block_mask(L, dens)
        elem = blocks.repeat_interleave(128, 0).repeat_interleave(128, 1)[:L, :L]
        blocks_dev = blocks.cuda()
        out.append((f"sweep random blocks {dens:.0%}", ma.dense(elem),
                    (lambda bl: lambda b, h, qi, ki: bl[qi // 128, ki // 128])(blocks_dev),
                    {"sweep": "random_blocks", "param": dens}))
    return out


def environment():
    import triton
    try:
        from importlib.metadata import version
        fa4 = version("flash-attn-4") if _fa4() is not None else None
    except Exception:  # noqa: BLE001
        fa4 = None
    return dict(gpu=torch.cuda.get_device_name(), torch=torch.__version__, triton=triton.__version__, fa4=fa4,
                maskattn=ma.__version__, python=platform.python_version(),
                date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), compile_warmed=True)


COLUMNS = (("flex", "flex"), ("flex_flash", "flex+FA4"), ("fa4", "FA4"), ("sdpa", "sdpa"))


def markdown(rows, env, args, sweeps: bool = True) -> str:
    rounds = env.get("rounds", 1)
    timing = "median of do_bench" + (f", then median of {rounds} interleaved rounds" if rounds > 1 else "")
    lines = [f"GPU: {env['gpu']}; torch {env['torch']}, triton {env['triton']}, maskattn {env['maskattn']}"
             + (f", flash-attn-4 {env['fa4']}" if env.get("fa4") else "") + f"; {env['date']}. B=1, H={args.heads}, "
             f"bf16. Times in ms ({timing}); xN = their time / maskattn time (above 1: maskattn is "
             "faster); TF = effective TFLOP/s (allowed pairs only). flex = FlexAttention (Triton backend), "
             "flex+FA4 = FlexAttention with BACKEND=FLASH, FA4 = FlashAttention-4 native (causal, window, varlen), "
             "sdpa = PyTorch SDPA (is_causal for causal, else a boolean mask where it fits), dense = SDPA without "
             "a mask (the ceiling); det = maskattn with deterministic=True. maskattn on sm_90: the warp-specialized "
             "Hopper forward (flash_fwd_sm90) for head dims up to 256 and the one-pass backward (flash_bwd_sm90, "
             "dQ by fp32 TMA reduce-adds) for head dims 64 and 128 (flash_bwd_sm90_wide for 129-256), on maps "
             "bound by their busiest key tile (Longformer, tree) with those key tiles cut into parts "
             "(split_columns, since session 37), except with det, which takes the portable two-kernel backward, "
             "as do the other head dims.", ""]
    diffs = [r["max_abs_diff_vs_flex"] for r in rows if "max_abs_diff_vs_flex" in r]
    if diffs:
        lines += [f"Largest |maskattn - FlexAttention| output difference over all cases: {max(diffs):.2e} (bf16).", ""]
    for mode in MODES:
        if all(math.isnan(r["times"]["maskattn"][mode]) for r in rows):  # not timed (--forward-only)
            continue
        det = mode != "fwd" and any("maskattn_det" in r["times"] for r in rows)  # older JSON files
        lines += [f"**{mode}**", "",
                  "| case | L | D | density | tiles | maskattn ms | TF | " + ("det ms | " if det else "")
                  + " | ".join(f"{t} ms | x" for _, t in COLUMNS) + " | dense ms |",
                  "|---|---|---|---|---|---|---|" + ("---|" if det else "") + "---|---|" * len(COLUMNS) + "---|"]
        for r in rows:
            if "sweep" in r and not sweeps:
                continue
            t, tf = r["times"], r["tflops"]
            get = lambda n: t.get(n, {}).get(mode, math.nan)  # noqa: E731
            ma_t = get("maskattn")
            cells = [r["case"], str(r["L"]), str(r.get("D", args.head_dim)), f"{r['density']:.2%}",
                     f"{r['tile_density']:.2%}", f"{ma_t:.3f}", f"{tf['maskattn'][mode]:.0f}"]
            if det:
                cells.append(f"{get('maskattn_det'):.3f}")
            for n, _ in COLUMNS:
                cells += [f"{get(n):.3f}", f"{get(n) / ma_t:.2f}"]
            cells.append(f"{get('sdpa_dense'):.3f}")
            lines.append("| " + " | ".join(c.replace("nan", "—") for c in cells) + " |")
        lines.append("")
    if not sweeps:  # the README shows the family tables only
        return "\n".join(lines)
    cold = "" if env.get("compile_warmed") else ("; this run did not warm compile_mask up, so the first entry "
                                                 "includes CUDA start-up — see compile_cuda.md for warmed timings")
    lines += [f"Block-map build (ms, once per mask, reused across layers{cold}): " + ", ".join(
        f"{r['case']}@{r['L']}: maskattn {r['maskattn_compile_ms']:.2f} / flex {r['flex_block_mask_ms']:.2f}"
        for r in rows if "sweep" not in r), ""]
    return "\n".join(lines)


def plots(rows, out_dir, subtitle=""):
    """PNG plots; ``subtitle`` (GPU, dtype, shape) goes into each figure's title."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sweeps = [r for r in rows if "sweep" in r]
    if sweeps:
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        for ax, mode in zip(axes, ("fwd", "fwd+bwd")):
            for impl, marker in (("maskattn", "o"), ("flex", "s"), ("sdpa", "^")):
                pts = sorted((r["density"], r["tflops"][impl][mode]) for r in sweeps if impl in r["tflops"])
                if pts:
                    ax.plot(*zip(*pts), marker=marker, linestyle="", label=impl)
            ax.set_xscale("log")
            ax.set_xlabel("mask density (allowed pairs / L^2)")
            ax.set_ylabel("effective TFLOP/s")
            ax.set_title(f"{mode}, L={sweeps[0]['L']}")
            ax.legend()
        fig.suptitle(f"maskattn vs FlexAttention vs SDPA: effective TFLOP/s by mask density\n{subtitle}", fontsize=10)
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "attention_tflops_vs_density.png"), dpi=110)
        plt.close(fig)
    fams = [r for r in rows if "sweep" not in r]
    if fams:
        fig, ax = plt.subplots(figsize=(10, 4.5))
        labels = [f"{r['case']}\n{r['L'] // 1024}k" for r in fams]
        x = range(len(fams))
        for off, mode in zip((-0.27, 0, 0.27), MODES):
            vals = [r["times"]["flex"][mode] / r["times"]["maskattn"][mode] for r in fams]
            ax.bar([i + off for i in x], vals, width=0.27, label=mode)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(list(x), labels, fontsize=8)
        ax.set_ylabel("speedup over FlexAttention")
        ax.set_title(f"maskattn speedup over FlexAttention (its time / ours)\n{subtitle}", fontsize=10)
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "attention_speedup_vs_flex.png"), dpi=110)
        plt.close(fig)


def update_readme(md: str) -> None:
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
    text = open(path).read()
    start, end = "<!-- bench:attention:start -->", "<!-- bench:attention:end -->"
    if start in text and end in text:
        text = text[: text.index(start) + len(start)] + "\n" + md + "\n" + text[text.index(end):]
        open(path, "w").write(text)


def _output(args, ext: str) -> str:
    return os.path.join(args.out, f"attention{'_quick' if args.quick else ''}.{ext}")


def save_rows(rows, env, args):
    """The rows measured so far as JSON (``--render`` input): written after every case, so that a
    run cut by a time limit still leaves what it measured."""
    with open(_output(args, "json"), "w") as f:
        json.dump(dict(env=env, rows=rows), f, indent=1)


def write_outputs(rows, env, args) -> str:
    md = markdown(rows, env, args)
    with open(_output(args, "md"), "w") as f:
        f.write(md)
    save_rows(rows, env, args)
    plots(rows, args.out, f"{env['gpu']}, bf16, B=1, H={args.heads}, D={args.head_dim}")
    if args.update_readme:
        update_readme(markdown(rows, env, args, sweeps=False) + "\nSparsity sweeps (window sizes, document lengths, "
                      "random block masks) and plots: `benchmarks/results/attention.md`.\n")
    return md


def main():
    args = parse_args()
    if args.render:
        saved = json.load(open(args.render))
        os.makedirs(args.out, exist_ok=True)
        write_outputs(saved["rows"], saved["env"], args)
        return
    if not torch.cuda.is_available():
        sys.exit("bench_attention.py needs a CUDA GPU (speed is only measured on GPUs); "
                 "on CPU run the tests or benchmarks/bench_compile.py --device cpu instead.")
    import torch._functorch.config as functorch_config
    functorch_config.donated_buffer = False  # lets the compiled flex backward run again on a retained graph
    from benchmarks.gpu_setup import flex_and_timer
    # static shapes (see the docstring); dynamo's limits raised: one flex graph per mask_mod closure
    implementations.flex, _, _ = flex_and_timer("bench_attention.py", recompiles=256)
    if args.config:
        from maskattn.kernels import config
        config.OVERRIDES.update(json.load(open(args.config)))
    os.makedirs(args.out, exist_ok=True)
    env = environment()
    env["rounds"] = args.rounds
    if args.config:  # the configs the run used, when they came from a tuning sweep
        env["kernel_config"] = json.load(open(args.config))
    log(f"bench_attention on {env['gpu']} (torch {env['torch']}, triton {env['triton']})")
    timer = Timer(args.quick)
    sizes = args.sizes if args.sizes is not None else ([8192] if args.quick else [8192, 32768])
    rows = []
    three = [n for n in args.families if n in ("causal", "sliding", "documents")]
    plan = [(L, n, None) for L in sizes for n in args.families] + [(L, n, None) for L in args.long for n in three]
    plan += [(32768, n, d) for d in args.other_head_dims for n in three]
    for L, name, d in plan:
        rows.append(run_case(timer, name, families.mask(name, L), families.mask_mod(name, L, "cuda"), L, args,
                             dense_ok=L <= 32768, family=name, head_dim=d))
        save_rows(rows, env, args)
    if not args.no_sweeps:
        L = 8192
        log(f"sparsity sweeps at L={L}")
        for label, mask, mod, extra in sweep_cases(L, args.quick):
            rows.append(run_case(timer, label, mask, mod, L, args, dense_ok=True, extra=extra))
            save_rows(rows, env, args)
    log(write_outputs(rows, env, args))


if __name__ == "__main__":
    main()
