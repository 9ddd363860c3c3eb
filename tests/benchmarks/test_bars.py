"""benchmarks/bars.py: the round's bars read off one benchmark run's rows."""
import math

from benchmarks import bars


def _row(case, L, times, D=128):
    return {"case": case, "L": L, "D": D, "times": times}


def test_every_bar_of_both_issues_is_listed_once():
    listed = bars.round_bars()
    keys = [(b.issue, b.mode, b.case, b.length, b.against) for b in listed]
    assert len(keys) == len(set(keys))
    # issue 8 and 9 each: causal vs SDPA at 8k / 32k, 5 families x 3 flex bars, FA4 stretch on 3 x 2
    assert sum(b.issue == 8 for b in listed) == sum(b.issue == 9 for b in listed) == 2 + 15 + 6
    flex_8k = {b.issue: b.at_least for b in listed if b.against == "flex" and b.length == 8192}
    assert flex_8k == {8: 1.2, 9: 1.1}


def test_ratios_are_their_time_over_ours_with_met_missed_and_not_measured():
    rows = [
        _row("causal", 8192, {"maskattn": {"fwd": 1.0, "fwd+bwd": 4.0}, "sdpa": {"fwd": 1.05, "fwd+bwd": 3.9}}),
        _row("sliding", 32768, {"maskattn": {"fwd": 2.0}, "flex": {"fwd": 2.5}}),
        _row("sliding", 32768, {"maskattn": {"fwd": 9.0}, "flex": {"fwd": 1.0}}, D=64),  # other head dims ignored
    ]
    got = {(b.issue, b.case, b.length, b.against): (r, v) for b, r, v in bars.verdicts(rows)}
    assert got[(8, "causal", 8192, "sdpa")] == (1.05, "met")
    r, v = got[(9, "causal", 8192, "sdpa")]
    assert math.isclose(r, 3.9 / 4.0) and v == "missed"
    r, v = got[(8, "sliding", 32768, "flex")]
    assert math.isclose(r, 1.25) and v == "missed"  # bar 1.3
    r, v = got[(8, "sliding", 32768, "flex_flash")]  # no FA4 in this run
    assert math.isnan(r) and v == "not measured"
    assert got[(9, "tree", 8192, "flex")][1] == "not measured"  # size not run


def test_markdown_names_the_run_and_every_bar():
    rows = [_row("causal", 32768, {"maskattn": {"fwd": 1.0}, "sdpa": {"fwd": 1.1}})]
    text = bars.markdown(rows, {"gpu": "NVIDIA H100 80GB HBM3", "torch": "2.11", "triton": "3.6", "fa4": None})
    assert text.startswith("Run: NVIDIA H100 80GB HBM3; torch 2.11, triton 3.6, flash-attn-4 absent")
    assert "| 8 | fwd | causal | 32768 | sdpa | >= 1.0 | 1.10 | met |" in text
    assert text.count("\n| ") == len(bars.round_bars()) + 1  # header + one line a bar
