"""benchmarks/gpu_setup: Dynamo's recompile limits raised for the benchmarks (CPU)."""
import pytest

torch = pytest.importorskip("torch")
gpu_setup = pytest.importorskip("benchmarks.gpu_setup")


def test_recompile_limits_are_raised():
    import torch._dynamo as dynamo

    # restored by hand: monkeypatch's undo breaks the alias between the two names (torch >= 2.13)
    names = ["cache_size_limit"] + (["recompile_limit"] if hasattr(dynamo.config, "recompile_limit") else [])
    saved = {name: getattr(dynamo.config, name) for name in names}
    try:
        gpu_setup.raise_recompile_limits(123)
        assert all(getattr(dynamo.config, name) == 123 for name in names)
    finally:
        for name, value in saved.items():
            setattr(dynamo.config, name, value)
    assert all(getattr(dynamo.config, name) == value for name, value in saved.items())
