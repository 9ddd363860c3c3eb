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
