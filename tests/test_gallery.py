"""Every gallery script (examples/masks/) runs, matches its own written-out rule, and saves its picture."""
import glob
import os
import runpy
import sys

import pytest

GALLERY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "masks")
SCRIPTS = sorted(p for p in glob.glob(os.path.join(GALLERY, "*.py")) if not os.path.basename(p).startswith("_"))


def test_gallery_has_every_pattern():
    names = {os.path.basename(p)[:-3] for p in SCRIPTS}
    assert {"causal_padding", "packed_documents", "sliding_sinks", "llama4_chunked", "gemma3_image_blocks",
            "longformer", "bigbird", "medusa_tree", "duo_attention_heads", "neighborhood_2d", "neighborhood_video",
            "dilated_window"} <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: os.path.basename(p))
def test_gallery_script(script, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("MASKATTN_GALLERY_OUT", str(tmp_path))
    monkeypatch.syspath_prepend(GALLERY)
    sys.modules.pop("_gallery", None)  # re-read OUT from the environment
    runpy.run_path(script, run_name="__main__")
    assert os.path.exists(tmp_path / (os.path.basename(script)[:-3] + ".png"))
