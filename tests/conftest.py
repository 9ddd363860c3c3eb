"""Shared test setup: makes ``tests/helpers.py`` importable and sets the hypothesis profile."""
import os
import sys

from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(__file__))

# Small, deterministic-enough defaults; individual tests pick their own max_examples.
settings.register_profile("maskattn", deadline=None, suppress_health_check=[HealthCheck.too_slow],
                          print_blob=True)
settings.load_profile("maskattn")

# Without a GPU, kernel tests run the Triton kernels through the interpreter. It must be
# chosen before Triton decorates the kernels, i.e. before maskattn is imported.
try:
    import torch

    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")
except ImportError:  # pragma: no cover
    pass


# ---- execution paths ----------------------------------------------------------------------------
import pytest  # noqa: E402

_PATHS = [
    pytest.param("interpreter", marks=pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1",
                                                         reason="the Triton interpreter runs only with TRITON_INTERPRET=1")),
    "torch",
    pytest.param("cuda", marks=[pytest.mark.gpu,
                                pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]),
]


@pytest.fixture(params=_PATHS)
def path_device(request, monkeypatch):
    """Run a test on one execution path of maskattn.attention: "interpreter" (Triton kernels on
    CPU), "torch" (the block-sparse PyTorch path on CPU) or "cuda" (GPU-marked). Returns the
    device for the test's tensors; ``request.param`` names the path."""
    if request.param == "torch":
        import maskattn.kernels.op as op

        monkeypatch.setattr(op, "interpreting", lambda: False)
        return "cpu"
    return "cuda" if request.param == "cuda" else "cpu"
