"""benchmarks/gpu_setup: Dynamo's recompile limits raised for the benchmarks (CPU)."""
import pytest

torch = pytest.importorskip("torch")
gpu_setup = pytest.importorskip("benchmarks.gpu_setup")


def test_recompile_limits_are_raised(monkeypatch):
    import torch._dynamo as dynamo

    monkeypatch.setattr(dynamo.config, "cache_size_limit", 8)
    if hasattr(dynamo.config, "recompile_limit"):
        monkeypatch.setattr(dynamo.config, "recompile_limit", 8)
    gpu_setup.raise_recompile_limits(123)
    assert dynamo.config.cache_size_limit == 123
    if hasattr(dynamo.config, "recompile_limit"):
        assert dynamo.config.recompile_limit == 123
