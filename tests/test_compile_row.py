"""``compile_row.positions``: the cached aranges single-query-tile compiles evaluate masks on."""
import torch

from maskattn import compile_row


def test_positions_are_aranges_and_views_of_one_cache(monkeypatch):
    monkeypatch.setattr(compile_row, "_POSITIONS", {})
    cpu = torch.device("cpu")
    for start, n in [(0, 5), (7, 100), (70000, 3000), (0, 1), (5, 0)]:  # the third one grows the cache
        assert torch.equal(compile_row.positions(start, n, cpu), torch.arange(start, start + n))
    cache = compile_row._POSITIONS[cpu]
    assert compile_row.positions(10, 20, cpu).data_ptr() == cache[10:].data_ptr()
    # negative starts and ranges past the cap are made fresh, never cached
    assert torch.equal(compile_row.positions(-3, 5, cpu), torch.arange(-3, 2))
    monkeypatch.setattr(compile_row, "_MAX_CACHED", 1000)
    far = compile_row.positions(990, 20, cpu)
    assert torch.equal(far, torch.arange(990, 1010)) and compile_row._POSITIONS[cpu] is cache
