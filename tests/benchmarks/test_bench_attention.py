"""bench_attention's forward-only mode (the 128k rows): only the forward is timed, and the
tables of modes nobody timed are left out."""
import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root: benchmarks

from benchmarks import bench_attention as B  # noqa: E402


def test_forward_only_times_no_backward():
    timed = []
    res = B.time_modes(lambda fn: timed.append(fn) or 1.5, lambda: None, (), None, modes=("fwd",))
    assert res["fwd"] == 1.5 and len(timed) == 1
    assert math.isnan(res["bwd"]) and math.isnan(res["fwd+bwd"])


def test_markdown_leaves_out_untimed_modes():
    nan = float("nan")
    times = {"fwd": 2.0, "bwd": nan, "fwd+bwd": nan}
    row = dict(case="causal", L=131072, D=128, density=0.5, tile_density=0.5, times={"maskattn": times, "sdpa": times},
               tflops={"maskattn": {"fwd": 500.0, "bwd": nan, "fwd+bwd": nan}})
    env = dict(gpu="NVIDIA H200", torch="2.11", triton="3.6", maskattn="0.1.0", date="today")
    md = B.markdown([row], env, argparse.Namespace(heads=16, head_dim=128), sweeps=False)
    assert "**fwd**" in md and "**bwd**" not in md and "**fwd+bwd**" not in md
    line = next(x for x in md.splitlines() if x.startswith("| causal | 131072 |"))
    assert "| 2.000 | 500 |" in line


def test_rows_saved_so_far_render(tmp_path):
    # a run cut by a time limit leaves its rows as JSON, and --render makes the tables from them
    times = {"fwd": 2.0, "bwd": 3.0, "fwd+bwd": 5.0}
    row = dict(case="causal", L=32768, D=128, density=0.5, tile_density=0.5, times={"maskattn": times, "sdpa": times},
               tflops={"maskattn": {"fwd": 500.0, "bwd": 400.0, "fwd+bwd": 430.0}})
    env = dict(gpu="NVIDIA H100 80GB HBM3", torch="2.11", triton="3.6", maskattn="0.1.0", date="today")
    args = argparse.Namespace(quick=False, out=str(tmp_path), heads=16, head_dim=128, update_readme=False)
    B.save_rows([row], env, args)
    saved = json.loads((tmp_path / "attention.json").read_text())
    assert saved["env"] == env and len(saved["rows"]) == 1
    md = B.markdown(saved["rows"], saved["env"], args, sweeps=False)
    line = next(x for x in md.splitlines() if x.startswith("| causal | 32768 |"))
    assert "| 2.000 | 500 |" in line


def test_rounds_interleave_the_implementations_and_keep_medians():
    # every implementation once a round, all of them before the next round; per mode the median
    # over the rounds; a failed round (NaN) does not count, all rounds failed gives NaN
    order = []
    times = iter([1.0, 9.0, 3.0, 2.0, float("nan"), 4.0])

    def timer(fn):
        order.append(fn())
        return next(times)

    impls = {"a": (lambda: "a", (), ("fwd",)), "b": (lambda: "b", (), ("fwd",))}
    res = B.time_implementations(timer, impls, None, rounds=3)
    assert order == ["a", "b", "a", "b", "a", "b"]
    assert res["a"]["fwd"] == 1.0 + (3.0 - 1.0) / 2 and res["b"]["fwd"] == 4.0  # medians of (1, 3) and (9, 2, 4)
    assert all(math.isnan(res[n]["bwd"]) for n in "ab")
    assert math.isnan(B._median([float("nan")])) and B._median([3.0, 1.0, 2.0]) == 2.0


def test_forward_only_leaves_out_implementations_without_a_forward():
    impls = {"fwd": (lambda: None, (), ("fwd", "bwd")), "det": (lambda: None, (), ("bwd", "fwd+bwd"))}
    res = B.time_implementations(lambda fn: 2.0, impls, None, forward_only=True)
    assert set(res) == {"fwd"} and res["fwd"]["fwd"] == 2.0 and math.isnan(res["fwd"]["bwd"])
