"""bench_transformers' interleaved timing of generate runs (CPU: CUDA calls stubbed)."""
import types

import pytest

torch = pytest.importorskip("torch")
bench = pytest.importorskip("benchmarks.bench_transformers")


class _Model:
    def __init__(self):
        self.impl, self.order = None, []

    def set_attn_implementation(self, impl):
        self.impl = impl


def test_generate_runs_alternate_between_implementations_and_failures_are_recorded(monkeypatch):
    for name in ("synchronize", "reset_peak_memory_stats", "empty_cache"):
        monkeypatch.setattr(torch.cuda, name, lambda: None)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda: 2**30)
    model = _Model()

    def gen():
        model.order.append(model.impl)
        if model.impl == "flex_attention" and len(model.order) > 3:
            raise RuntimeError("compile failed")

    a = types.SimpleNamespace(warmup=1, repeats=3)
    rows = bench.run_interleaved(model, ["maskattn", "flex_attention", "sdpa"], "generate-B1-dynamic", 256, gen, a)
    # warm-up round, then rounds in alternating order; flex fails in its second run and drops out
    assert model.order == ["maskattn", "flex_attention", "sdpa", "sdpa", "flex_attention", "maskattn",
                           "maskattn", "sdpa", "sdpa", "maskattn"]
    ours, flex, sdpa = rows
    assert "error" in flex and "compile failed" in flex["error"]
    assert len(ours["times_s"]) == 3 and len(sdpa["times_s"]) == 3
    assert ours["tokens_per_s"] == pytest.approx(256 / ours["median_s"]) and ours["peak_mem_gib"] == 1.0


def test_generate_rows_count_dynamo_graphs_and_breaks(monkeypatch):
    """Each implementation's rows count the graphs Dynamo compiled and the graph breaks it hit
    during that implementation's runs (a compiled static-cache step that breaks apart shows)."""
    for name in ("synchronize", "reset_peak_memory_stats", "empty_cache"):
        monkeypatch.setattr(torch.cuda, name, lambda: None)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda: 0)
    model = _Model()
    activity = [0, 0]
    monkeypatch.setattr(bench, "dynamo_activity", lambda: tuple(activity))

    def gen():
        if model.impl == "maskattn":  # 2 graphs and 1 break a run
            activity[0] += 1
            activity[1] += 2

    rows = bench.run_interleaved(model, ["maskattn", "sdpa"], "generate-B1-static", 8, gen,
                                 types.SimpleNamespace(warmup=1, repeats=2))
    assert (rows[0]["graphs_compiled"], rows[0]["graph_breaks"]) == (6, 3)
    assert (rows[1]["graphs_compiled"], rows[1]["graph_breaks"]) == (0, 0)


def test_dynamo_activity_reads_the_counters():
    from torch._dynamo.utils import counters
    breaks, graphs = bench.dynamo_activity()
    counters["graph_break"]["test reason"] += 2
    counters["stats"]["unique_graphs"] += 1
    try:
        assert bench.dynamo_activity() == (breaks + 2, graphs + 1)
    finally:
        counters["graph_break"]["test reason"] -= 2
        counters["stats"]["unique_graphs"] -= 1
