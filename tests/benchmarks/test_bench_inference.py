"""bench_inference.py's host-side helpers (no GPU)."""
from benchmarks import bench_inference as BI


def test_bench_inference_rounds_interleave_and_keep_medians():
    order, values = [], iter([5.0, 1.0, 3.0, 2.0, 4.0, 9.0])
    fns = {"a": "fa", "b": "fb"}
    res = BI.median_rounds(lambda fn: order.append(fn) or next(values), fns, rounds=3)
    assert order == ["fa", "fb"] * 3  # one of each per round
    assert res == {"a": 4.0, "b": 2.0}  # medians of (5, 3, 4) and (1, 2, 9)
