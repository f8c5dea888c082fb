"""One value reads the same on every surface: the CLI table, the TUI, Markdown, HTML, the
diff (CLI and TUI), the doctor report and the NVML line all print 0.0123 ms, a 3.14159x
speedup, 1536 bytes and a missing value the same way (core/units.py's rules)."""

from __future__ import annotations

import copy
import csv
import io
import re
from types import SimpleNamespace

import pytest

from flashtui.core.results import Cell
from flashtui.core.session import Session
from flashtui.monitor.format import fmt_sample
from flashtui.reports import csv_export, doctor, html, markdown, table
from flashtui.reports.diff import diff_sessions, render_diff
from flashtui.tui import present
from flashtui.tui.screens.sessions import diff_row

TIME_MS, SPEEDUP, N_BYTES = 0.0123, 3.14159, 1536
# What every surface must print for them (the rules in core/units.py's docstring).
TIME, RATIO, BYTES, MISSING = "12.3 us", "3.14x", "1.50 KiB", "NA"


def _session() -> Session:
    """fa2 at seq 1024: 0.0123 ms, 3.14159x standard's speed, 1536 bytes, no theory/IQR/TFLOP/s."""
    session = Session(spec={"mode": "kernel", "device": "cuda", "seqs": [1024], "dtypes": ["bf16"],
                            "backends": ["standard", "fa2"], "warmup_ms": 100.0},
                      provenance={"device_name": "Test GPU", "torch": "2.5.1"},
                      id="20250101-000000-abcdef", created_at="2025-01-01T00:00:00+00:00")
    session.add_cell(Cell("standard", 1024, "bf16", median_ms=TIME_MS * SPEEDUP, iqr_ms=0.001,
                          peak_alloc_bytes=4096, theory_bytes=4096))
    session.add_cell(Cell("fa2", 1024, "bf16", median_ms=TIME_MS, peak_alloc_bytes=N_BYTES))
    session.status = "complete"
    return session


@pytest.fixture
def fa2_session() -> Session:
    session = _session()
    assert session.cell("fa2", 1024, "bf16").speedup_vs_standard == pytest.approx(SPEEDUP)
    return session


def _columns(text: str, first: str) -> list[str]:
    """The fixed-width row that starts with ``first``, split on its 2+ space gaps."""
    line = next(line for line in text.splitlines() if line.split()[:1] == [first])
    return re.split(r"\s{2,}", line.strip())


def test_cli_table(fa2_session):
    text = table.render_session(fa2_session)
    row = dict(zip(table.HEADER, _columns(text, "fa2")))
    assert (row["median"], row["IQR"], row["speedup"]) == (TIME, MISSING, RATIO)
    assert (row["peak mem"], row["theory"], row["FLOP/s"]) == (BYTES, MISSING, MISSING)
    assert text.isascii()  # survives a non-UTF-8 terminal or log


def test_tui_panels(fa2_session):
    cell = fa2_session.cell("fa2", 1024, "bf16").to_dict()
    timing = dict(zip(present.TIMING_COLUMNS, present.timing_row(cell)))
    assert timing["median ± IQR"] == f"{TIME} ± {MISSING}"
    assert (timing["speedup"], timing["FLOP/s"]) == (RATIO, MISSING)
    memory = dict(zip(present.MEMORY_COLUMNS, present.memory_row(cell)))
    assert (memory["alloc peak"], memory["theory"]) == (BYTES, MISSING)


def test_markdown_and_html_rows(fa2_session):
    want = {"median ± IQR": f"{TIME} ± {MISSING}", "speedup": RATIO, "peak alloc": BYTES,
            "theory": MISSING, "FLOP/s": MISSING}
    md_line = next(line for line in markdown.render(fa2_session).splitlines()
                   if line.startswith("| fa2 |"))
    md_row = dict(zip(markdown.RESULT_COLUMNS, (c.strip() for c in md_line.strip("|").split("|"))))
    assert {k: md_row[k] for k in want} == want
    page = html.render(fa2_session)
    html_rows = [re.findall(r"<td[^>]*>(.*?)</td>", tr) for tr in re.findall(r"<tr>(.*?)</tr>", page)]
    html_row = next(dict(zip(markdown.RESULT_COLUMNS, r)) for r in html_rows if r[:2] == ["fa2", "1024"])
    assert {k: html_row[k] for k in want} == want
    # The HTML speedup chart's tooltip reads like the tables.
    assert f"fa2 @ 1024: {RATIO}" in page


def test_diff_cli_and_tui(fa2_session):
    later = copy.deepcopy(fa2_session)
    slower = later.cell("fa2", 1024, "bf16")
    slower.median_ms, slower.peak_alloc_bytes = TIME_MS * SPEEDUP, None
    result = diff_sessions(fa2_session, later)
    cli = dict(zip(("backend", "seq", "dtype", "A ms", "B ms", "B/A time", "A peak", "B peak"),
                   _columns(render_diff(result), "fa2")))
    assert (cli["A ms"], cli["B/A time"], cli["A peak"], cli["B peak"]) == (TIME, RATIO, BYTES, MISSING)
    pair = next(c for c in result.cells if c.backend == "fa2")
    tui = diff_row(pair)
    assert (tui[3], tui[5], tui[6], tui[7]) == (TIME, RATIO, BYTES, MISSING)


def test_doctor_report():
    fastest = {"fastest": "fa2", "label": "short probe",
               "rows": [{"backend": "fa2", "median_ms": TIME_MS, "iqr_ms": None,
                         "speedup_vs_standard": SPEEDUP, "status": "ok"}]}
    assert _columns(doctor.render_fastest(fastest), "fa2")[1:4] == [TIME, MISSING, RATIO]
    env = doctor.render_environment({"provenance": {"device_kind": "cuda", "device_name": "Test GPU",
                                                    "total_memory_bytes": N_BYTES}})
    rows = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in env.splitlines())
    assert rows["GPU memory"] == BYTES and rows["compute capability"] == MISSING


def test_nvml_line():
    sample = SimpleNamespace(mem_used_bytes=N_BYTES, mem_total_bytes=None, proc_mem_bytes=None,
                             util_gpu_pct=None, sm_clock_mhz=None, power_w=None, temp_c=None)
    assert fmt_sample(sample).startswith(f"mem {BYTES} / {MISSING} (proc {MISSING})")


def test_csv_keeps_raw_numbers_and_says_na(fa2_session):
    rows = list(csv.DictReader(io.StringIO(csv_export.render(fa2_session))))
    fa2 = next(r for r in rows if r["backend"] == "fa2")
    assert float(fa2["median_ms"]) == TIME_MS and int(fa2["peak_alloc_bytes"]) == N_BYTES
    assert float(fa2["speedup_vs_standard"]) == pytest.approx(SPEEDUP)
    assert fa2["iqr_ms"] == fa2["theory_bytes"] == fa2["tflops"] == MISSING
