"""present.py: the TUI's rows, series and progress lines, shaped without a terminal.

The number formats themselves are core.units' (tests/unit/test_units.py)."""

from __future__ import annotations

import math

import pytest

from flashtui.tui import present


def test_eta_and_progress():
    assert present.eta_seconds(0, 10, 5.0) is None
    assert present.eta_seconds(2, 10, 4.0) == pytest.approx(16.0)
    assert present.progress_text(2, 10, 4.0) == "2/10 cells · 4 s elapsed · ETA 16 s"
    assert present.progress_text(10, 10, 125.0) == "10/10 cells · 2m05s elapsed · done"


def _cell(backend, seq, median, peak=None, status="ok", **extra):
    return {"backend": backend, "seq": seq, "dtype": "fp32", "status": status,
            "median_ms": median, "peak_alloc_bytes": peak, "theory_bytes": seq * seq * 4, **extra}


def test_rows_status_and_parity():
    failed = _cell("sdpa-flash", 64, None, status="failed", reason="worker killed by SIGKILL")
    assert present.timing_row(failed)[-1] == "FAILED: worker killed by SIGKILL"
    assert present.timing_row(failed)[3] == "NA"
    ok = _cell("standard", 64, 1.0, parity={"rel_l2": 1e-7, "ratio_vs_standard": 1.0,
                                            "max_abs": 5e-7, "mean_abs": 4e-8, "passed": True})
    assert present.parity_row(ok)[3:] == ("1.0e-07", "1.00x", "5.0e-07", "4.0e-08", "pass")
    assert present.parity_row(failed)[3:] == ("NA",) * 5


def test_memory_row_saving_vs_standard():
    std = _cell("standard", 1024, 2.0, peak=64 * 1024**2)
    flash = _cell("sdpa-flash", 1024, 0.5, peak=8 * 1024**2)
    peaks = present.standard_peaks([std, flash])
    row = present.memory_row(flash, peaks[(1024, "fp32")])
    assert row[3:] == ("8.00 MiB", "4.00 MiB", "8.00x")


def test_chart_series_and_bars():
    cells = [_cell("standard", 128, 2.0), _cell("sdpa-flash", 128, 0.5),
             _cell("standard", 64, 1.0), _cell("sdpa-flash", 64, 0.5),
             _cell("sdpa-math", 64, None, status="failed")]
    series = present.series_by_backend(cells, "median_ms")
    assert series == {"standard": ([64, 128], [1.0, 2.0]), "sdpa-flash": ([64, 128], [0.5, 0.5])}
    labels, backends, values = present.bars_vs_standard(cells, present.speedup_ratio)
    assert labels == ["64", "128"] and backends == ["sdpa-flash"]
    assert values == [[2.0, 4.0]]
    labels, backends, values = present.bars_vs_standard(cells, present.memory_saving_ratio)
    assert values == [[1.0, 1.0]]  # theory bytes alike here: no saving


def test_short_reason_and_trace_label():
    assert present.short_reason("fa2", "fa2 runs on CUDA GPUs only") == "runs on CUDA GPUs only"
    assert present.short_reason("fa2", None) == "unavailable"
    assert present.memory_trace_label(None, 80 * 1024**3, None) == "GPU memory NA / 80.0 GiB · worker NA"
    assert not math.isnan(present.eta_seconds(1, 1, 1.0))


def test_status_text_says_noisy_with_its_reason_and_names_sdpas_pick():
    assert present.status_text({"status": "ok", "noisy": True, "noise_reason": "IQR 40% of median"}) == \
        "~ noisy: IQR 40% of median"
    assert present.status_text({"status": "ok", "backend": "sdpa", "extra": {"sdpa_kernel": "CUDNN_ATTENTION"}}) == \
        "ok: ran CUDNN_ATTENTION"
    assert present.status_text({"status": "ok", "backend": "sdpa-flash", "extra": {}}) == "ok"
