"""diff_sessions: planted regressions are flagged, identical sessions are not."""

from __future__ import annotations

import copy

import pytest

from flashtui.reports.diff import diff_sessions, render_diff
from flashtui.core.results import Cell
from flashtui.core.session import Session
from flashtui.core.spec import CellKey


def _session(sid: str, torch: str = "2.5.1") -> Session:
    session = Session(spec={"mode": "kernel", "head_dim": 128}, id=sid,
                      provenance={"device_name": "NVIDIA H100", "torch": torch,
                                  "flash_attn": "2.7.0", "hostname": sid})
    for seq, std_ms, fa_ms in ((1024, 0.2, 0.1), (4096, 3.0, 1.0)):
        session.add_cell(Cell("standard", seq, "bf16", median_ms=std_ms, peak_alloc_bytes=seq * seq * 32))
        session.add_cell(Cell("fa2", seq, "bf16", median_ms=fa_ms, peak_alloc_bytes=seq * 8192))
    return session


def test_identical_sessions_have_no_regressions():
    a = _session("a")
    b = copy.deepcopy(a)
    b.id = "b"
    result = diff_sessions(a, b)
    assert result.regressions == []
    assert [c.verdict for c in result.cells] == ["same"] * 4
    assert all(c.time_ratio == 1.0 and c.mem_ratio == 1.0 for c in result.cells)
    assert result.only_in_a == result.only_in_b == []
    assert result.provenance_changes == []  # hostname differs, but says nothing
    assert "0 regressions" in render_diff(result)


def test_planted_20_percent_slowdown_is_flagged_and_5_percent_is_not():
    a, b = _session("a"), _session("b")
    b.cell("fa2", 4096, "bf16").median_ms *= 1.20
    b.cell("standard", 1024, "bf16").median_ms *= 1.05
    result = diff_sessions(a, b, threshold=0.10)
    assert [(c.key, c.regressions) for c in result.regressions] == [(CellKey("fa2", 4096, "bf16"), ["time"])]
    flagged = result.regressions[0]
    assert flagged.time_ratio == pytest.approx(1.20)
    text = render_diff(result)
    assert "1 regression: fa2 seq=4096 bf16" in text
    assert "REGRESSION (time)" in text and "1.20x" in text
    # A tighter threshold catches the 5% one too.
    tight = diff_sessions(a, b, threshold=0.01)
    assert {c.key for c in tight.regressions} == {CellKey("fa2", 4096, "bf16"), CellKey("standard", 1024, "bf16")}


def test_memory_growth_status_loss_and_improvements():
    a, b = _session("a"), _session("b")
    b.cell("fa2", 1024, "bf16").peak_alloc_bytes *= 2
    oom = b.cell("standard", 4096, "bf16")
    oom.status, oom.median_ms, oom.peak_alloc_bytes = "oom", None, None
    b.cell("fa2", 4096, "bf16").median_ms = 0.5
    result = diff_sessions(a, b)
    by_key = {c.key: c for c in result.cells}
    assert by_key[CellKey("fa2", 1024, "bf16")].regressions == ["memory"]
    assert by_key[CellKey("standard", 4096, "bf16")].regressions == ["status"]
    assert by_key[CellKey("standard", 4096, "bf16")].time_ratio is None  # NA, not 0
    assert by_key[CellKey("fa2", 4096, "bf16")].improved and by_key[CellKey("fa2", 4096, "bf16")].verdict == "improved"
    assert len(result.regressions) == 2


def test_one_sided_cells_and_provenance_changes_are_listed():
    a, b = _session("a"), _session("b", torch="2.6.0")
    b.add_cell(Cell("fa3", 4096, "bf16", median_ms=0.8))
    a.cells = [c for c in a.cells if c.key != CellKey("standard", 1024, "bf16")] + [
        Cell("sdpa-math", 1024, "bf16", median_ms=0.4)]
    b.spec["head_dim"] = 64
    result = diff_sessions(a, b)
    assert result.only_in_a == [CellKey("sdpa-math", 1024, "bf16")]
    assert result.only_in_b == [CellKey("standard", 1024, "bf16"), CellKey("fa3", 4096, "bf16")]
    assert result.provenance_changes == [("torch", "2.5.1", "2.6.0")]
    assert result.spec_changes == [("head_dim", 128, 64)]
    text = render_diff(result)
    assert "torch: 2.5.1 -> 2.6.0" in text and "only in B: standard seq=1024 bf16, fa3 seq=4096 bf16" in text
    data = result.to_dict()
    assert data["only_in_a"] == [["sdpa-math", 1024, "bf16"]] and data["n_regressions"] == 0


def test_negative_threshold_is_refused():
    with pytest.raises(ValueError):
        diff_sessions(_session("a"), _session("b"), threshold=-0.1)


def test_noisy_cells_are_not_comparable_and_spread_is_no_regression():
    from flashtui.core.results import Cell
    from flashtui.core.session import Session
    from flashtui.reports.diff import diff_sessions

    def session(cells):
        s = Session(spec={"mode": "kernel"}, provenance={})
        for c in cells:
            s.add_cell(c)
        return s

    a = session([Cell("fa4", 1024, "bf16", median_ms=1.0, samples_ms=[0.9, 1.0, 1.1, 1.2]),
                 Cell("sdpa", 1024, "bf16", median_ms=1.0, samples_ms=[0.99, 1.0, 1.01, 1.0]),
                 Cell("flex", 1024, "bf16", median_ms=1.0)])
    b = session([Cell("fa4", 1024, "bf16", median_ms=1.15, samples_ms=[0.95, 1.15, 1.2, 1.3]),  # IQRs overlap
                 Cell("sdpa", 1024, "bf16", median_ms=1.5, samples_ms=[1.49, 1.5, 1.51, 1.5]),  # beyond spread
                 Cell("flex", 1024, "bf16", median_ms=3.0, noisy=True, noise_reason="IQR 40% of median")])
    verdicts = {c.backend: c.verdict for c in diff_sessions(a, b).cells}
    assert verdicts["sdpa"] == "REGRESSION (time)"
    assert verdicts["fa4"] == "same"
    assert verdicts["flex"] == "not comparable: noisy (B)"
    assert [c.backend for c in diff_sessions(a, b).regressions] == ["sdpa"]
