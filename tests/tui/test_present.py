"""present.py: every number the TUI shows, formatted without a terminal."""

from __future__ import annotations

import math

import pytest

from flashtui.tui import present


@pytest.mark.parametrize("value, text", [
    (None, "NA"), (float("nan"), "NA"), (1.234, "1.23 ms"), (0.0123, "12.3 us"),
    (12.5, "12.5 ms"), (1234.0, "1234 ms"), (12_345.0, "12.3 s"),
])
def test_fmt_ms(value, text):
    assert present.fmt_ms(value) == text


def test_fmt_ms_iqr_same_unit_and_noisy():
    assert present.fmt_ms_iqr(1.234, 0.05) == "1.23 ± 0.05 ms"
    assert present.fmt_ms_iqr(0.0767, 0.0077) == "76.7 ± 7.7 us"
    # A spread 1000x the median keeps its own unit instead of '± 12000'.
    assert present.fmt_ms_iqr(0.214, 12.3) == "214 us ± 12.3 ms"
    assert present.fmt_ms_iqr(None, 1.0) == "NA"
    assert present.fmt_ms_iqr(2.0, None) == "2 ms"


@pytest.mark.parametrize("value, text", [
    (None, "NA"), (512, "512 B"), (1536, "1.5 KiB"), (16 * 1024**3, "16.0 GiB"), (3 * 1024**2, "3.0 MiB"),
])
def test_fmt_bytes(value, text):
    assert present.fmt_bytes(value) == text


def test_speedup_tflops_err_ratio_pass():
    assert present.fmt_speedup(3.42) == "3.4x"
    assert present.fmt_speedup(0.5) == "0.50x"
    assert present.fmt_speedup(None) == "NA"
    assert present.fmt_tflops(512.3) == "512 TFLOP/s"
    assert present.fmt_tflops(0.0123) == "12.3 GFLOP/s"
    assert present.fmt_tflops(2e-5) == "20 MFLOP/s"
    assert present.fmt_err(1.8145e-7) == "1.8e-07"
    assert present.fmt_ratio(1.0563) == "1.06"
    assert present.fmt_pass(True) == "pass" and present.fmt_pass(False) == "FAIL"
    assert present.fmt_pass(None) == "NA"


def test_eta_and_progress():
    assert present.eta_seconds(0, 10, 5.0) is None
    assert present.eta_seconds(2, 10, 4.0) == pytest.approx(16.0)
    assert present.progress_text(2, 10, 4.0) == "2/10 cells · 4 s elapsed · ETA 16 s"
    assert present.progress_text(10, 10, 125.0).endswith("done")
    assert present.fmt_duration(125) == "2m05s"
    assert present.fmt_duration(3725) == "1h02m"


def _cell(backend, seq, median, peak=None, status="ok", **extra):
    return {"backend": backend, "seq": seq, "dtype": "fp32", "status": status,
            "median_ms": median, "peak_alloc_bytes": peak, "theory_bytes": seq * seq * 4, **extra}


def test_rows_status_and_parity():
    failed = _cell("sdpa-flash", 64, None, status="failed", reason="worker killed by SIGKILL")
    assert present.timing_row(failed)[-1] == "FAILED: worker killed by SIGKILL"
    assert present.timing_row(failed)[3] == "NA"
    ok = _cell("standard", 64, 1.0, parity={"rel_l2": 1e-7, "ratio_vs_standard": 1.0,
                                            "max_abs": 5e-7, "mean_abs": 4e-8, "passed": True})
    assert present.parity_row(ok)[3:] == ("1.0e-07", "1.00", "5.0e-07", "4.0e-08", "pass")
    assert present.parity_row(failed)[3:] == ("NA",) * 5


def test_memory_row_saving_vs_standard():
    std = _cell("standard", 1024, 2.0, peak=64 * 1024**2)
    flash = _cell("sdpa-flash", 1024, 0.5, peak=8 * 1024**2)
    peaks = present.standard_peaks([std, flash])
    row = present.memory_row(flash, peaks[(1024, "fp32")])
    assert row[3:] == ("8.0 MiB", "4.0 MiB", "8.0x")


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
