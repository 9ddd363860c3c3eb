"""benchmarks/ab.py: a copied kernel module loads as its own module inside the package."""
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root: benchmarks

from benchmarks import ab  # noqa: E402
from benchmarks.ab import load_kernel_variant  # noqa: E402
from maskattn.kernels import flash_fwd_sm90  # noqa: E402


def test_variant_is_a_separate_module_with_package_imports(tmp_path):
    copy = tmp_path / "fwd_copy.py"
    shutil.copy(flash_fwd_sm90.__file__, copy)
    variant = load_kernel_variant(str(copy), "test_variant_flash_fwd_sm90")
    assert variant is not flash_fwd_sm90 and variant.__name__ == "maskattn.kernels.test_variant_flash_fwd_sm90"
    assert variant.BlockMap is flash_fwd_sm90.BlockMap  # its relative imports reached the package
    variant.STATIC_MAX_MEAN_TILES = -1  # a variant's knobs are its own
    assert flash_fwd_sm90.STATIC_MAX_MEAN_TILES == 16
    del sys.modules[variant.__name__]


def test_interleaved_medians_alternate_the_variants(monkeypatch):
    order = []
    fake = {"a": [3.0, 1.0], "b": [10.0, 30.0]}
    monkeypatch.setattr(ab, "event_times_us", lambda fn, reps: order.append(fn()) or fake[order[-1]][:reps])
    med = ab.interleaved_medians({"a": lambda: "a", "b": lambda: "b"}, rounds=3, reps=2)
    assert order == ["a", "b"] * 3  # round by round, every variant once per round
    assert med == {"a": 2.0, "b": 20.0}


def test_median_rounds_interleave_and_keep_medians():
    order, values = [], iter([5.0, 1.0, 3.0, 2.0, 4.0, 9.0])
    fns = {"a": "fa", "b": "fb"}
    res = ab.median_rounds(lambda fn: [order.append(fn) or next(values)], fns, rounds=3)
    assert order == ["fa", "fb"] * 3  # one of each per round
    assert res == {"a": 4.0, "b": 2.0}  # medians of (5, 3, 4) and (1, 2, 9)


def test_env_cases_parse_the_environment_or_the_default(monkeypatch):
    monkeypatch.delenv("CASES", raising=False)
    assert ab.env_cases("causal:8192:128 tree:64:256") == [("causal", 8192, 128), ("tree", 64, 256)]
    monkeypatch.setenv("CASES", "sliding:96:32")
    assert ab.env_cases("causal:8192:128") == [("sliding", 96, 32)]


def test_package_run_times_the_package_forward_or_backward_on_the_family_mask():
    import torch

    import maskattn as ma
    from benchmarks import families
    g = torch.Generator().manual_seed(0)
    q, k, v, do = (torch.randn(1, 2, 80, 16, generator=g) for _ in range(4))
    for t in (q, k, v):
        t.requires_grad_()
    want = ma.attention(q, k, v, ma.compile_mask(families.mask("documents", 80), 80, 80))
    want_grads = torch.autograd.grad(want, (q, k, v), do)
    (out,) = ab.package_run(ma, "documents", 80, q, k, v, do, backward=False)()
    assert torch.equal(out, want) and not out.requires_grad
    grads = ab.package_run(ma, "documents", 80, q, k, v, do, backward=True)()
    assert len(grads) == 3 and all(torch.equal(a, b) for a, b in zip(grads, want_grads))
    assert ab.max_difference(grads, want_grads) == 0.0
    assert families.ma is ma  # the family module's package is put back


def test_env_packages_import_the_named_packages(monkeypatch):
    import maskattn
    monkeypatch.setenv("PKGS", "maskattn")
    assert ab.env_packages() == {"maskattn": maskattn}
