"""benchmarks/fa4_parts.sh: FA4's library split in two halves here and joined on the GPU machine
from two separate calls (each carries one half)."""
import os
import shutil
import subprocess

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "fa4_parts.sh")
pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("sha256sum") is None,
                                reason="needs bash and coreutils")


def _run(cwd, *args, env=None):
    return subprocess.run(["bash", os.path.abspath(SCRIPT), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, check=True).stdout


def test_split_then_stage_each_half_in_its_own_call(tmp_path):
    checkout, machine = tmp_path / "checkout", tmp_path / "machine"
    (checkout / ".fa4-lib").mkdir(parents=True)
    library = os.urandom(100_001)  # odd: the halves differ by a byte
    (checkout / ".fa4-lib" / "cu13.tar.xz").write_bytes(library)
    _run(checkout, "split")
    a, b = ((checkout / f".fa4-lib-{p}" / "part").read_bytes() for p in "ab")
    assert a + b == library and abs(len(a) - len(b)) <= 1
    env = dict(os.environ, FA4_STAGE_DIR=str(machine))
    for half in "ab":  # each call carries one half: the other folder is absent
        call = tmp_path / f"call_{half}"
        shutil.copytree(checkout / f".fa4-lib-{half}", call / f".fa4-lib-{half}")
        out = _run(call, "stage", env=env)
    assert "library staged" in out
    assert (machine / "cu13.tar.xz").read_bytes() == library


def test_stage_rejects_halves_of_different_libraries(tmp_path):
    checkout, machine = tmp_path / "checkout", tmp_path / "machine"
    (checkout / ".fa4-lib").mkdir(parents=True)
    (checkout / ".fa4-lib" / "cu13.tar.xz").write_bytes(os.urandom(5000))
    _run(checkout, "split")
    (checkout / ".fa4-lib-b" / "part").write_bytes(os.urandom(2500))  # a half of another library
    with pytest.raises(subprocess.CalledProcessError) as err:
        _run(checkout, "stage", env=dict(os.environ, FA4_STAGE_DIR=str(machine)))
    assert "checksum" in err.value.stderr
    assert not (machine / "cu13.tar.xz").exists()
