"""The round's speed bars (issues 8 and 9, head dim 128) checked against one ``bench_attention.py``
run: every bar as a ratio from that run's JSON, met or missed, or "not measured" where the run
lacks a column (no FA4 installed, a size not run). Ratios are competitor time / maskattn time
(above 1: maskattn is faster), the README's convention.

    python benchmarks/bars.py benchmarks/results/attention.json

Bars that compare against an earlier state ("no family slower than today", "the deterministic
path no slower than today's") need a second run and are not checked here.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.families import FAMILIES  # noqa: E402

HEAD_DIM = 128
ANCHORED = ("causal", "sliding", "documents")  # the families FA4 native runs (causal, window, varlen)


@dataclass(frozen=True)
class Bar:
    issue: int
    mode: str  # "fwd" or "fwd+bwd"
    case: str
    length: int
    against: str  # a key of a row's "times": flex, flex_flash, fa4, sdpa
    at_least: float
    stretch: bool = False


def round_bars() -> list[Bar]:
    """Issue 8 (forward) and issue 9 (forward+backward) at head dim 128, as their texts state them."""
    bars = []
    for issue, mode, flex_8k in ((8, "fwd", 1.2), (9, "fwd+bwd", 1.1)):
        bars += [Bar(issue, mode, "causal", n, "sdpa", 1.0) for n in (8192, 32768)]
        for fam in FAMILIES:
            bars += [Bar(issue, mode, fam, 32768, "flex", 1.3), Bar(issue, mode, fam, 32768, "flex_flash", 1.0),
                     Bar(issue, mode, fam, 8192, "flex", flex_8k)]
        bars += [Bar(issue, mode, fam, n, "fa4", 1.0, stretch=True) for fam in ANCHORED for n in (8192, 32768)]
    return bars


def ratio(rows: list[dict], bar: Bar) -> float:
    """Competitor time / maskattn time for ``bar`` in a run's rows; NaN where not measured."""
    for row in rows:
        if row["case"] == bar.case and row["L"] == bar.length and row["D"] == HEAD_DIM:
            times = row["times"]
            mine = times.get("maskattn", {}).get(bar.mode, math.nan)
            theirs = times.get(bar.against, {}).get(bar.mode, math.nan)
            return theirs / mine if mine and mine == mine else math.nan
    return math.nan


def verdicts(rows: list[dict]) -> list[tuple[Bar, float, str]]:
    """(bar, ratio, "met" / "missed" / "not measured") for every bar of the round."""
    out = []
    for bar in round_bars():
        r = ratio(rows, bar)
        out.append((bar, r, "not measured" if math.isnan(r) else "met" if r >= bar.at_least else "missed"))
    return out


def markdown(rows: list[dict], env: dict | None = None) -> str:
    """The verdicts as a markdown table, headed by the run's GPU and versions (``env``)."""
    lines = []
    if env:
        lines += [f"Run: {env.get('gpu', '?')}; torch {env.get('torch', '?')}, triton {env.get('triton', '?')}, "
                  f"flash-attn-4 {env.get('fa4') or 'absent'}; {env.get('date', '')}"
                  + (f"; medians of {env['rounds']} interleaved rounds" if env.get("rounds", 1) > 1 else ""), ""]
    lines += ["| issue | mode | case | L | against | bar | ratio | verdict |", "|---|---|---|---|---|---|---|---|"]
    for bar, r, verdict in verdicts(rows):
        shown = "—" if math.isnan(r) else f"{r:.2f}"
        kind = " (stretch)" if bar.stretch else ""
        lines.append(f"| {bar.issue} | {bar.mode} | {bar.case} | {bar.length} | {bar.against} | "
                     f">= {bar.at_least:.1f}{kind} | {shown} | {verdict} |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("json", help="a bench_attention.py JSON (one run)")
    args = p.parse_args()
    with open(args.json) as f:
        run = json.load(f)
    print(markdown(run["rows"], run.get("env")))


if __name__ == "__main__":
    main()
