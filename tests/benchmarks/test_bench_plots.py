"""bench_attention's plots name the GPU, dtype and shape in their titles (rendered from fake rows)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root: benchmarks

matplotlib = pytest.importorskip("matplotlib")
import matplotlib.figure  # noqa: E402
from benchmarks import bench_attention as B  # noqa: E402


def test_plot_titles_carry_gpu_dtype_and_shape(tmp_path, monkeypatch):
    figs = []
    real = matplotlib.figure.Figure.savefig
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, *a, **kw: figs.append(fig) or real(fig, *a, **kw))
    modes = {m: 1.0 for m in B.MODES}
    rows = [dict(case="causal", L=8192, times={"maskattn": modes, "flex": modes}),
            dict(sweep="window", L=8192, density=0.1, tflops={"maskattn": modes, "flex": modes, "sdpa": modes})]
    B.plots(rows, str(tmp_path), "NVIDIA H100, bf16, B=1, H=16, D=128")
    assert len(figs) == 2
    for fig in figs:
        titles = [fig._suptitle.get_text() if fig._suptitle else ""] + [ax.get_title() for ax in fig.axes]
        assert any("H100" in t and "bf16" in t and "H=16" in t and "D=128" in t for t in titles), titles
