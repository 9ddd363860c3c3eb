"""Time and memory of ``maskattn.compile_mask`` next to FlexAttention's ``create_block_mask``.

For the five standard families (benchmarks/families.py) at L = 8k, 32k, 128k, 1M
(q_len == kv_len == L, B = H = 1, 128 x 128 tiles), on one device, it records

* mask build time: drawing the random structure (document lengths, tree parents) and
  constructing the maskattn mask object (tree: its Euler tour) on the device; likewise
  the FlexAttention ``mask_mod`` with its captured tensors on the device;
* compile time: warm-up, then the median of repeated runs (synchronised on CUDA) of
  ``ma.compile_mask``; ``torch.compile(create_block_mask)`` (its compile time excluded and
  reported as "first call"); uncompiled ``create_block_mask`` where it fits;
* memory: bytes of the resulting map's tensors (BlockMap / BlockMask) and, on CUDA, the
  peak temporary memory (``max_memory_allocated`` minus the baseline) of one call;
* the tile counts of both maps, which must agree.

Run from the repo root::

    PYTHONPATH=. python benchmarks/bench_compile.py --device cuda --out benchmarks/results
    PYTHONPATH=. python benchmarks/bench_compile.py --device cpu --quick

Writes ``compile_<device>.md`` and ``compile_<device>.json`` into ``--out`` (rewritten
after every measurement, so an interrupted run keeps what it measured). A whole CUDA run
takes about 10 minutes, most of it ``torch.compile`` of ``create_block_mask`` (one static
compile per family and size; seen: ~1 min cold, up to ~3 min for the 1M tree on an H100);
to split it, run ``--sizes 8k,32k,128k`` and then ``--sizes 1M --merge``.

Skips, so that a run stays sane: a size whose time per call, extrapolated from the previous
size (linear for maskattn, quadratic for create_block_mask), exceeds ``--skip-factor`` x
``--budget``; uncompiled ``create_block_mask`` where its L x L mask cannot fit; and repeats
of any call longer than ``--budget`` (20 s on CPU, 60 s on CUDA; the one call is reported).
Errors and out-of-memory are recorded as such, never fatal.
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import maskattn as ma  # noqa: E402
from benchmarks import families as F  # noqa: E402

try:
    from torch.nn.attention.flex_attention import create_block_mask
    FLEX_ERROR = None
except Exception as e:  # noqa: BLE001 - any import failure just disables the competitor
    create_block_mask = None
    FLEX_ERROR = f"{type(e).__name__}: {e}"

BLOCK = 128
ALL_SIZES = (8192, 32768, 131072, 1 << 20)
QUICK_SIZES = (8192, 32768)
METHODS = ("maskattn", "flex_compiled", "flex_eager")
# growth of one call's time with L, used only to skip sizes that would blow the budget:
# maskattn works in O(tiles + partial-tile elements), create_block_mask evaluates all L^2 pairs
GROWTH = {"maskattn": 1.0, "flex_compiled": 2.0, "flex_eager": 2.0}
EAGER_BYTES_PER_PAIR = 10  # uncompiled create_block_mask: measured ~10 bytes per (q, kv) pair on CPU


def log(msg: str) -> None:
    print(msg, flush=True)


def parse_size(s: str) -> int:
    s = s.strip().lower()
    mult = {"k": 1024, "m": 1 << 20}.get(s[-1:], 1)
    return int(float(s[:-1] if mult > 1 else s) * mult)


def fmt_size(n: int) -> str:
    if n % (1 << 20) == 0:
        return f"{n >> 20}M"
    return f"{n >> 10}k" if n % 1024 == 0 else str(n)


def tensor_bytes(obj) -> int:
    """Bytes of the tensors of a BlockMap (dataclass fields) or a BlockMask (``as_tuple()``)."""
    if hasattr(obj, "as_tuple"):
        items = obj.as_tuple()
    else:
        items = [getattr(obj, k) for k in vars(obj)]
    return sum(t.numel() * t.element_size() for t in items if isinstance(t, torch.Tensor))


def tile_counts(obj) -> tuple[int, int]:
    """(full tiles, partial tiles) of a BlockMap or a BlockMask."""
    if isinstance(obj, ma.BlockMap):
        return obj.n_full, obj.n_partial
    full = obj.full_kv_num_blocks
    return (int(full.sum()) if full is not None else 0), int(obj.kv_num_blocks.sum())


def is_oom(e: BaseException) -> bool:
    return isinstance(e, torch.OutOfMemoryError) or "out of memory" in str(e).lower() or \
        "can't allocate memory" in str(e).lower()


def mem_available() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 16 << 30


class Runner:
    def __init__(self, device: torch.device, args):
        self.dev, self.args = device, args
        self.cuda = device.type == "cuda"
        self.budget = args.budget  # seconds: one call longer than this is not repeated

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize(self.dev)

    def clock(self, fn):
        self.sync()
        t0 = time.perf_counter()
        out = fn()
        self.sync()
        return out, time.perf_counter() - t0

    def measure(self, fn):
        """Warm up, then time repeated calls. Returns (times, last output, note)."""
        note = ""
        out = None
        times = []
        for _ in range(self.args.warmup):
            del out
            out, t = self.clock(fn)
            if t > self.budget:  # too slow to repeat: report this call
                return [t], out, f"1 run: one call took {t:.1f} s > budget {self.budget:g} s"
        start = time.perf_counter()
        while len(times) < self.args.repeats:
            del out
            out, t = self.clock(fn)
            times.append(t)
            if len(times) >= 3 and time.perf_counter() - start > self.args.time_cap:
                break
            if t > self.budget:
                note = f"{len(times)} run(s): one call took {t:.1f} s > budget {self.budget:g} s"
                break
        return times, out, note

    def peak_temp(self, fn) -> int | None:
        """Peak CUDA memory of one call above what was allocated before it (result included)."""
        if not self.cuda:
            return None
        gc.collect()
        self.sync()
        base = torch.cuda.memory_allocated(self.dev)
        torch.cuda.reset_peak_memory_stats(self.dev)
        out = fn()
        self.sync()
        peak = torch.cuda.max_memory_allocated(self.dev) - base
        del out
        return int(peak)


def run_config(runner: Runner, name: str, L: int, methods, last: dict, rows: list, save):
    dev, args = runner.dev, runner.args
    base = {"family": name, "L": L, "device": str(dev)}

    # structure draws (numpy, cached, shared by both methods) ----------------------------
    t0 = time.perf_counter()
    if name == "documents":
        F.document_lengths(L)
    elif name == "tree":
        F.tree_parents(L)
    gen_s = time.perf_counter() - t0
    detail = F.describe(name, L)
    log(f"[{time.perf_counter() - runner.t_start:7.1f} s] {name} L={fmt_size(L)}  {detail}")

    ref_counts = None
    for method in methods:
        row = dict(base, method=method, gen_s=gen_s, detail=detail, status="ok", note="")
        key = (method, name)
        if key in last:  # predicted time from the previous size
            L0, t0_ = last[key]
            pred = t0_ * (L / L0) ** GROWTH[method]
            if pred > args.skip_factor * runner.budget:
                row.update(status="skipped", note=f"predicted ~{pred:.0f} s per call from {fmt_size(L0)} "
                                                  f"(> {args.skip_factor:g} x budget {runner.budget:g} s)")
                rows.append(row)
                log(f"  {method:14s} skipped: {row['note']}")
                save()
                continue
        try:
            if method == "maskattn":
                mask, build_s = runner.clock(lambda: F.mask(name, L).to(dev))
                fn = lambda: ma.compile_mask(mask, L, L, block_q=BLOCK, block_k=BLOCK, device=dev)  # noqa: E731
            else:
                if create_block_mask is None:
                    raise RuntimeError(f"FlexAttention unavailable ({FLEX_ERROR})")
                mod, build_s = runner.clock(lambda: F.mask_mod(name, L, dev))
                if method == "flex_eager":
                    need = EAGER_BYTES_PER_PAIR * L * L
                    cap = torch.cuda.get_device_properties(dev).total_memory if runner.cuda else int(0.6 * mem_available())
                    if need > (4 if runner.cuda else 1) * cap:
                        row.update(status="skipped", build_s=build_s,
                                   note=f"needs ~{need / 2**30:.0f} GiB (materialises the L x L mask), "
                                        f"{'device has' if runner.cuda else 'allowed'} {cap / 2**30:.0f} GiB")
                        rows.append(row)
                        log(f"  {method:14s} skipped: {row['note']}")
                        save()
                        continue
                    fn = lambda: create_block_mask(mod, None, None, L, L, device=dev, BLOCK_SIZE=BLOCK)  # noqa: E731
                else:
                    torch._dynamo.reset()  # one fresh static compile per (family, L)
                    cbm = torch.compile(create_block_mask)
                    fn = lambda: cbm(mod, None, None, L, L, device=dev, BLOCK_SIZE=BLOCK)  # noqa: E731
                    out, row["first_call_s"] = runner.clock(fn)  # compile + one call
                    del out
            times, out, note = runner.measure(fn)
        except Exception as e:  # noqa: BLE001 - record and go on
            oom = is_oom(e)
            row.update(status="OOM" if oom else "error", note=f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}")
            if not oom and args.verbose:
                traceback.print_exc()
            if runner.cuda:
                gc.collect()
                torch.cuda.empty_cache()
            rows.append(row)
            log(f"  {method:14s} {row['status']}: {row['note']}")
            save()
            continue
        med = statistics.median(times)
        last[key] = (L, med)
        row.update(build_s=build_s, median_s=med, min_s=min(times), runs=len(times), note=note)
        row["result_bytes"] = tensor_bytes(out)
        n_full, n_part = tile_counts(out)
        row.update(n_full=n_full, n_partial=n_part, tile_density=(n_full + n_part) / (-(-L // BLOCK)) ** 2)
        if isinstance(out, ma.BlockMap):
            row["density"] = out.density
        if ref_counts is None:
            ref_counts = (n_full, n_part)
        elif (n_full, n_part) != ref_counts:
            row["note"] = (row["note"] + "; " if row["note"] else "") + \
                f"TILE COUNTS DIFFER from {methods[0]}: full/partial {n_full}/{n_part} vs {ref_counts[0]}/{ref_counts[1]}"
        del out
        if runner.cuda:
            try:
                row["peak_temp_bytes"] = runner.peak_temp(fn)
            except Exception as e:  # noqa: BLE001
                row["peak_temp_bytes"] = None
                row["note"] = (row["note"] + "; " if row["note"] else "") + f"peak-memory run failed: {type(e).__name__}"
            gc.collect()
            torch.cuda.empty_cache()
        rows.append(row)
        first_txt = f" (first call {row['first_call_s']:.2f} s)" if "first_call_s" in row else ""
        log(f"  {method:14s} build {build_s * 1e3:9.2f} ms  median {med * 1e3:10.2f} ms over {len(times)}{first_txt}  "
            f"map {row['result_bytes'] / 2**20:8.2f} MiB"
            + (f"  peak {row['peak_temp_bytes'] / 2**20:8.1f} MiB" if row.get("peak_temp_bytes") is not None else "")
            + f"  full/partial {n_full}/{n_part}" + (f"  [{row['note']}]" if row["note"] else ""))
        save()


# ---- reporting -------------------------------------------------------------------------
def meta_info(dev: torch.device, args) -> dict:
    try:
        import triton
        triton_v = triton.__version__
    except Exception:  # noqa: BLE001
        triton_v = None
    if dev.type == "cuda":
        dev_name = torch.cuda.get_device_name(dev)
    else:
        dev_name = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo") as f:
                dev_name = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
        except (OSError, StopIteration):
            pass
        dev_name += f" ({torch.get_num_threads()} torch threads)"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, timeout=10).stdout.strip() or None
        if commit and subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "maskattn"], cwd=ROOT,
                                     timeout=10).returncode == 1:
            commit += "+dirty"  # uncommitted changes under maskattn/
    except Exception:  # noqa: BLE001
        commit = None
    return {
        "benchmark": "compile", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": str(dev), "device_name": dev_name, "torch": torch.__version__, "triton": triton_v,
        "cuda": torch.version.cuda, "maskattn": ma.__version__, "git_commit": commit,
        "python": platform.python_version(), "loadavg": os.getloadavg()[0] if hasattr(os, "getloadavg") else None, "block": BLOCK, "flex_available": create_block_mask is not None,
        "flex_error": FLEX_ERROR, "args": vars(args), "command": " ".join(sys.argv),
    }


def _ms(row) -> str:
    if row is None:
        return "-"
    if row["status"] != "ok":
        return row["status"]
    s = f"{row['median_s'] * 1e3:.2f}" if row["median_s"] < 10 else f"{row['median_s'] * 1e3:.0f}"
    return s + ("¹" if row.get("runs", 0) < 3 else "")


def _mib(v) -> str:
    return "-" if v is None else f"{v / 2**20:.2f}"


def markdown(meta: dict, rows: list) -> str:
    by = {(r["family"], r["L"], r["method"]): r for r in rows}
    configs = sorted({(r["family"], r["L"]) for r in rows},
                     key=lambda c: (c[1], F.FAMILIES.index(c[0]) if c[0] in F.FAMILIES else 99, c[0]))
    cuda = meta["device"].startswith("cuda")
    out = [f"# compile_mask vs create_block_mask — {meta['device']}", "",
           f"{meta['device_name']}; torch {meta['torch']}, triton {meta['triton']}, maskattn {meta['maskattn']}"
           + (f" (git {meta['git_commit']})" if meta.get("git_commit") else "") + f"; {meta['date']}"
           + (f"; load average {meta['loadavg']:.1f} at start" if meta.get("loadavg") is not None else "") + ".", "",
           f"B = H = 1, q_len = kv_len = L, {BLOCK}x{BLOCK} tiles. Times are medians of repeated calls after "
           "warm-up (ms; ¹ = fewer than 3 runs). *build* = constructing the mask object on the device "
           "(tree: Euler tour; documents: ids), after drawing the random structure (*draw*). "
           "*flex* = `torch.compile(create_block_mask)` (first call = compile + run, excluded from the median); "
           "*flex eager* = uncompiled `create_block_mask`. Speedup = flex time / maskattn time.", ""]
    for old in meta.get("merged_runs", []):
        out += [f"Also holds rows of an earlier run (--merge): {old.get('date')}, {old.get('device_name')}, "
                f"torch {old.get('torch')}, maskattn {old.get('maskattn')} (git {old.get('git_commit')}).", ""]
    if not meta["flex_available"]:
        out += [f"**FlexAttention not available** ({meta['flex_error']}): maskattn numbers only.", ""]
    out += ["| family | L | density | tile density | full / partial tiles | draw ms | build ms (maskattn / flex) | maskattn ms "
            "| flex ms | flex first call s | flex eager ms | speedup vs flex | speedup vs eager |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for fam, L in configs:
        m, fc, fe = (by.get((fam, L, k)) for k in METHODS)
        ok = m is not None and m["status"] == "ok"

        def speed(o):
            if not ok or o is None or o["status"] != "ok":
                return "-"
            x = o['median_s'] / m['median_s']
            return f"{x:.2f}x" if x < 1 else f"{x:.1f}x"
        gen = next((r["gen_s"] for r in (m, fc, fe) if r is not None), None)
        out.append("| " + " | ".join([
            fam, fmt_size(L),
            f"{m['density']:.2%}" if ok and "density" in m else "-",
            f"{m['tile_density']:.2%}" if ok else "-",
            f"{m['n_full']} / {m['n_partial']}" if ok else "-",
            f"{gen * 1e3:.1f}" if gen is not None else "-",
            " / ".join(f"{r['build_s'] * 1e3:.1f}" if r is not None and "build_s" in r else "-" for r in (m, fc)),
            _ms(m), _ms(fc),
            f"{fc['first_call_s']:.1f}" if fc is not None and "first_call_s" in fc else "-",
            _ms(fe), speed(fc), speed(fe)]) + " |")
    out += ["", "Memory (MiB): *map* = bytes of the result's tensors (BlockMap fields / BlockMask.as_tuple()). "
            "maskattn's map holds a 2 KiB bitmap per partial tile and CSR tile lists; FlexAttention's holds dense "
            "(Tq, Tk) index tables and no bitmaps (its kernels re-evaluate mask_mod)"
            + ("; *peak* = peak CUDA memory of one call above the baseline, result included." if cuda else "."), ""]
    hdr = "| family | L | maskattn map | flex map | flex eager map |"
    sep = "|---|---|---|---|---|"
    if cuda:
        hdr += " maskattn peak | flex peak | flex eager peak |"
        sep += "---|---|---|"
    out += [hdr, sep]
    for fam, L in configs:
        rs = [by.get((fam, L, k)) for k in METHODS]
        cells = [fam, fmt_size(L)] + [_mib(r.get("result_bytes")) if r is not None and r["status"] == "ok" else
                                      (r["status"] if r is not None else "-") for r in rs]
        if cuda:
            cells += [_mib(r.get("peak_temp_bytes")) if r is not None and r["status"] == "ok" else
                      (r["status"] if r is not None else "-") for r in rs]
        out.append("| " + " | ".join(cells) + " |")
    notes = [f"- {r['family']} {fmt_size(r['L'])} {r['method']}: {r['note']}" for r in rows if r.get("note")]
    if notes:
        out += ["", "Notes:", ""] + notes
    return "\n".join(out) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda if available, else cpu")
    p.add_argument("--sizes", default=None, help="comma list, e.g. 8k,32k,128k,1M (default: all four)")
    p.add_argument("--families", default=",".join(F.FAMILIES), help="comma list of " + ",".join(F.FAMILIES))
    p.add_argument("--methods", default=",".join(METHODS), help="comma list of " + ",".join(METHODS))
    p.add_argument("--quick", action="store_true", help="8k and 32k only, fewer repeats")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per measurement (default 10, quick 3)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up calls (default 2 on cuda, 1 on cpu)")
    p.add_argument("--time-cap", type=float, default=None,
                   help="stop repeating after this many seconds once 3 runs are in (default 5 cpu, 3 cuda)")
    p.add_argument("--budget", type=float, default=None,
                   help="one call longer than this (s) is not repeated (default 20 on cpu, 60 on cuda)")
    p.add_argument("--skip-factor", type=float, default=3.0,
                   help="skip a size when the time predicted from the previous size exceeds this x budget")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--merge", action="store_true",
                   help="keep the rows of an existing compile_<device>.json in --out that this run does not "
                        "re-measure (to split a long run over several invocations, e.g. --sizes 1M --merge)")
    p.add_argument("--verbose", action="store_true", help="print tracebacks of errors")
    args = p.parse_args(argv)

    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit(f"bench_compile: --device cuda asked for, but no CUDA device is available "
                 f"(torch {torch.__version__}, built with CUDA {torch.version.cuda}).")
    cuda = args.device == "cuda"
    sizes = [parse_size(s) for s in args.sizes.split(",")] if args.sizes else list(QUICK_SIZES if args.quick else ALL_SIZES)
    fams = [f.strip() for f in args.families.split(",") if f.strip()]
    for f in fams:
        if f not in F.FAMILIES:
            p.error(f"unknown family {f!r}; expected some of {F.FAMILIES}")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods:
        if m not in METHODS:
            p.error(f"unknown method {m!r}; expected some of {METHODS}")
    if args.repeats is None:
        args.repeats = 3 if args.quick else 10
    if args.warmup is None:
        args.warmup = 2 if cuda else 1
    if args.time_cap is None:
        args.time_cap = 3.0 if cuda else 5.0
    if args.budget is None:
        args.budget = 60.0 if cuda else 20.0
    if create_block_mask is None:  # FlexAttention missing: maskattn only, the report says why
        methods = [m for m in methods if m == "maskattn"]

    dev = torch.device("cuda", torch.cuda.current_device()) if cuda else torch.device("cpu")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = meta_info(dev, args)
    rows: list[dict] = []
    stem = out_dir / f"compile_{args.device}"
    kept: list[dict] = []
    if args.merge and stem.with_suffix(".json").exists():
        old = json.loads(stem.with_suffix(".json").read_text())
        redo = {(f, L, m) for f in fams for L in sizes for m in methods}
        kept = [r for r in old.get("results", []) if (r["family"], r["L"], r["method"]) not in redo]
        meta["merged_runs"] = old.get("meta", {}).get("merged_runs", []) + [
            {k: old.get("meta", {}).get(k) for k in ("date", "device_name", "torch", "triton", "maskattn", "git_commit", "command")}]
        log(f"bench_compile: --merge keeps {len(kept)} rows of {stem.with_suffix('.json')}")

    def save():
        everything = kept + rows
        stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "results": everything}, indent=1, default=str) + "\n")
        stem.with_suffix(".md").write_text(markdown(meta, everything))

    log(f"bench_compile: {meta['device_name']}; torch {meta['torch']}, triton {meta['triton']}, "
        f"maskattn {meta['maskattn']}; sizes {[fmt_size(s) for s in sizes]}; families {fams}; methods {methods}")
    if create_block_mask is None:
        log(f"bench_compile: FlexAttention import failed ({FLEX_ERROR}); measuring maskattn only")
    runner = Runner(dev, args)
    runner.t_start = time.perf_counter()
    last: dict = {}
    if cuda:  # CUDA context and allocator warm-up outside the measurements
        torch.zeros(1, device=dev).add_(1)
        torch.cuda.synchronize(dev)
    t_start = runner.t_start
    for L in sizes:  # size-major: an interrupted run keeps whole small sizes
        for name in fams:
            run_config(runner, name, L, methods, last, rows, save)
    save()
    log("")
    log(markdown(meta, kept + rows))
    log(f"wrote {stem.with_suffix('.md')} and {stem.with_suffix('.json')} ({time.perf_counter() - t_start:.0f} s)")


if __name__ == "__main__":
    main()
