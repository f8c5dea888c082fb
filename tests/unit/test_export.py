"""Exports: JSON round trip, golden Markdown, CSV columns, self-contained HTML + Chromium."""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from flashtui.store import atomic
from flashtui.store.atomic import StorageError
from flashtui.reports import export_session, render_session
from flashtui.reports.csv_export import COLUMNS
from flashtui.reports.json_export import parse
from flashtui.reports.markdown import findings
from flashtui.store.journal import SessionJournal, load_journal
from flashtui.core.results import Cell, Parity
from flashtui.core.session import Session
from flashtui.store.index import load_path

GOLDEN_DIR = Path(__file__).parent / "golden"
CHROMIUM = Path("/usr/bin/chromium")
FA2_ORANGE = (0xE6, 0x9F, 0x00)


def _parity(rel_l2: float, standard: float = 3.0e-3) -> Parity:
    ratio = rel_l2 / standard
    return Parity(max_abs=rel_l2 * 4, mean_abs=rel_l2 / 3, rel_l2=rel_l2, standard_rel_l2=standard,
                  ratio_vs_standard=ratio, passed=ratio <= 2.0)


def fixed_session() -> Session:
    """A hand-built H100-like sweep: standard OOMs at 16384, fa3 unsupported, fa2 wins."""
    session = Session(
        spec={"mode": "kernel", "device": "cuda", "seqs": [1024, 4096, 16384],
              "dtypes": ["bf16", "fp16"], "backends": ["standard", "sdpa-flash", "fa2", "fa3"],
              "batch": 1, "heads": 16, "kv_heads": None, "head_dim": 128, "causal": True,
              "backward": False, "reps": 30, "warmup_ms": 100.0, "parity": True},
        provenance={"device_name": "NVIDIA H100 80GB HBM3", "torch": "2.5.1+cu124", "cuda": "12.4",
                    "driver": "550.54.15", "cudnn": 90100, "flash_attn": "2.7.0.post2",
                    "python": "3.11.9", "hostname": "gpu-box"},
        id="20250314-091500-c0ffee", created_at="2025-03-14T09:15:00+00:00",
        flashtui_version="0.1.0", worker={"startup_s": 3.2},
        backends_unavailable={"fa4": "flash-attn-4 not installed: pip install flash-attn-4"},
    )
    times = {  # (backend, seq) -> median ms in bf16; fp16 is 5% slower
        ("standard", 1024): 0.21, ("standard", 4096): 3.1,
        ("sdpa-flash", 1024): 0.12, ("sdpa-flash", 4096): 1.25, ("sdpa-flash", 16384): 17.9,
        ("fa2", 1024): 0.125, ("fa2", 4096): 1.0, ("fa2", 16384): 14.2,
    }
    for dtype, slow in (("bf16", 1.0), ("fp16", 1.05)):
        for seq in (1024, 4096, 16384):
            for backend in ("standard", "sdpa-flash", "fa2"):
                ms = times.get((backend, seq))
                if ms is None:
                    session.add_cell(Cell(backend, seq, dtype, status="oom",
                                          reason="CUDA out of memory. Tried to allocate 8.00 GiB",
                                          theory_bytes=16 * seq * seq * 2))
                    continue
                ms *= slow
                standard_like = backend == "standard"
                rel_l2 = 3.0e-3 if standard_like else (3.3e-3 if backend == "fa2" else 3.1e-3)
                if dtype == "fp16" and backend == "sdpa-flash" and seq == 16384:
                    rel_l2 = 7.5e-3  # a planted parity failure (ratio 2.5)
                session.add_cell(Cell(
                    backend, seq, dtype, median_ms=ms, iqr_ms=ms * 0.02, min_ms=ms * 0.98, reps=30,
                    tflops=2 * 16 * seq * seq * 128 / (ms * 1e-3) / 1e12,
                    peak_alloc_bytes=(16 * seq * seq * 2 if standard_like else 16 * seq * 128 * 2 * 2),
                    theory_bytes=16 * seq * seq * 2 if standard_like else None,
                    parity=_parity(rel_l2), duration_s=1.5))
        session.add_cell(Cell("fa3", 1024, dtype, status="unsupported",
                              reason="FlashAttention-3 needs a Hopper GPU <sm90>"))
    session.status = "complete"
    session.finished_at = "2025-03-14T09:17:30+00:00"
    return session


# -- JSON ----------------------------------------------------------------------------
def test_json_round_trip_is_identical():
    text = render_session(fixed_session(), "json")
    again = render_session(parse(text), "json")
    assert again == text
    data = json.loads(text)
    assert data["schema"] == {"name": "flashtui.session", "version": 1}
    oom = next(c for c in data["cells"] if c["status"] == "oom")
    assert oom["median_ms"] is None and oom["tflops"] is None  # NA is null, never 0


def test_json_file_round_trip_through_the_loader(tmp_path):
    path = tmp_path / "s.json"
    text = export_session(fixed_session(), "json", path)
    assert path.read_text() == text
    loaded, warnings = load_path(path)
    assert warnings == []
    assert render_session(loaded, "json") == text


def test_journal_then_json_equals_direct_json(tmp_path):
    session = fixed_session()
    journal = SessionJournal(tmp_path / "s.jsonl")
    replay = Session(spec=session.spec, provenance=session.provenance, id=session.id,
                     created_at=session.created_at, flashtui_version=session.flashtui_version,
                     worker=session.worker, backends_unavailable=session.backends_unavailable)
    journal.begin(replay)
    for cell in session.cells:
        replay.add_cell(cell)
        journal.append_cell(cell)
    replay.status, replay.finished_at = session.status, session.finished_at
    journal.finish(replay)
    loaded, warnings = load_journal(tmp_path / "s.jsonl")
    assert warnings == []
    assert render_session(loaded, "json") == render_session(session, "json")


# -- Markdown ------------------------------------------------------------------------
def test_markdown_matches_golden_file():
    rendered = render_session(fixed_session(), "md")
    golden = GOLDEN_DIR / "fixed_session.md"
    if os.environ.get("FLASHTUI_UPDATE_GOLDEN"):
        golden.write_text(rendered)
    assert rendered == golden.read_text(), "regenerate with FLASHTUI_UPDATE_GOLDEN=1 and review the diff"


def test_findings_are_computed_from_the_cells():
    session = fixed_session()
    found = findings(session)
    assert "sdpa-flash fastest at seq 1024 (1.75x over standard) [bf16]" in found
    assert "fa2 fastest at seq >= 4096 (3.10x over standard) [bf16]" in found
    assert "standard OOM at seq 16384 [bf16]" in found
    assert "sdpa-flash fails parity at seq 16384 (worst ratio 2.50x > 2x) [fp16]" in found
    assert any(f.startswith("all 2 backends checked pass parity") and f.endswith("[bf16]") for f in found)
    # Change the data, and the findings follow.
    for cell in session.cells:
        if cell.backend == "fa2" and cell.median_ms:
            cell.median_ms *= 100
    from flashtui.core.results import attach_speedups
    attach_speedups(session.cells)
    assert "sdpa-flash fastest at every seq 1024–16384 (1.75–2.48x over standard) [bf16]" in findings(session)


def test_findings_name_the_cells_timed_under_pyspy_record():
    session = fixed_session()
    assert not any("py-spy" in f for f in findings(session))
    for cell in session.cells:
        if cell.dtype == "bf16" and cell.seq == 4096 and cell.backend in ("standard", "fa2"):
            cell.extra["timed_under_pyspy_record"] = True
    note = [f for f in findings(session) if "py-spy" in f]
    assert note == ["2 cell(s) timed while py-spy record sampled the worker (its pauses are in "
                    "their timings): standard seq=4096 bf16, fa2 seq=4096 bf16"]
    assert note[0] in render_session(session, "md")


def test_markdown_prints_na_for_unmeasured_numbers_never_zero():
    text = render_session(fixed_session(), "md")
    oom_row = next(line for line in text.splitlines() if line.startswith("| standard | 16384 | OOM"))
    cells = [c.strip() for c in oom_row.strip("|").split("|")]
    # median ± IQR, FLOP/s, % peak, speedup, peak alloc: unmeasured; theory is known; parity NA.
    assert cells[3:8] == ["NA"] * 5 and cells[9] == "NA"
    assert cells[8] == "8.00 GiB"


# -- CSV -----------------------------------------------------------------------------
def test_csv_one_flat_row_per_cell():
    session = fixed_session()
    rows = list(csv.DictReader(io.StringIO(render_session(session, "csv"))))
    assert len(rows) == len(session.cells)
    assert list(rows[0]) == COLUMNS
    assert {"parity_rel_l2", "parity_ratio_vs_standard", "parity_passed", "peak_alloc_bytes"} <= set(COLUMNS)
    by_key = {(r["backend"], int(r["seq"]), r["dtype"]): r for r in rows}
    fa2 = by_key[("fa2", 4096, "bf16")]
    cell = session.cell("fa2", 4096, "bf16")
    assert float(fa2["median_ms"]) == cell.median_ms
    assert int(fa2["peak_alloc_bytes"]) == cell.peak_alloc_bytes
    assert float(fa2["parity_rel_l2"]) == cell.parity.rel_l2 and fa2["parity_passed"] == "true"
    oom = by_key[("standard", 16384, "bf16")]
    # Missing is NA, as on every surface (never 0, never an empty field).
    assert oom["median_ms"] == "NA" and oom["parity_rel_l2"] == "NA" and oom["status"] == "oom"
    assert oom["reason"] != "NA" and "NA" not in (fa2["median_ms"], fa2["parity_rel_l2"])


# -- HTML ----------------------------------------------------------------------------
def _hostile_session() -> Session:
    session = fixed_session()
    session.provenance["note"] = "<script>alert('x')</script> & \"quotes\""
    session.cell("fa3", 1024, "fp16").reason = "<img src=x onerror=alert(1)>"
    return session


def test_html_is_self_contained_with_svg_charts_and_escaped_text():
    text = render_session(_hostile_session(), "html")
    assert text.count("<svg") == 8  # 4 charts x 2 dtypes
    for title in ("Time per call vs sequence length (bf16)", "Peak allocated memory vs sequence length (fp16)",
                  "Speedup over standard (bf16)", "Parity: relative L2 error vs fp64 (fp16)"):
        assert f"<title>{title}</title>" in text
    assert text.count("<polyline") >= 6 and "<rect" in text and "<circle" in text
    lowered = text.lower()
    for external in ("<script", ' src="', ' href="', "@import", "url(", "<link", "<img"):
        assert external not in lowered, external
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quotes&quot;" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    # The only "http" is the SVG namespace name, which loads nothing.
    assert lowered.count("http://") + lowered.count("https://") == lowered.count("http://www.w3.org/2000/svg")


def test_html_charts_say_na_when_nothing_was_measured():
    session = Session(spec={"dtypes": ["bf16"]}, id="empty")
    session.add_cell(Cell("standard", 1024, "bf16", status="oom", reason="out of memory"))
    text = render_session(session, "html")
    assert text.count("NA: nothing measured") == 4


def _png_pixels(data: bytes) -> tuple[int, int, list[tuple[int, ...]]]:
    """Decode an 8-bit RGB/RGBA non-interlaced PNG (what Chromium writes) with zlib only."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and color in (2, 6) and interlace == 0
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        filt, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            if filt == 1:
                line[i] = (line[i] + a) & 255
            elif filt == 2:
                line[i] = (line[i] + b) & 255
            elif filt == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif filt == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    pixels = [tuple(row[i:i + 3]) for row in rows for i in range(0, stride, channels)]
    return width, height, pixels


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium not installed "
                    "(apt-get install -y chromium to run this test)")
def test_html_renders_in_headless_chromium(tmp_path):
    page = tmp_path / "session.html"
    export_session(_hostile_session(), "html", page)
    shot = tmp_path / "shot.png"
    result = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
         "--v=0", f"--screenshot={shot}", "--window-size=1200,2000", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert shot.exists(), result.stderr[-2000:]
    log = result.stderr
    for bad in ("Uncaught", "Refused to", "ERR_FILE_NOT_FOUND", "ERR_BLOCKED"):
        assert bad not in log, f"{bad} in chromium log: {log[-2000:]}"
    assert not any("CONSOLE" in line and "ERROR" in line.upper() for line in log.splitlines())
    width, height, pixels = _png_pixels(shot.read_bytes())
    assert (width, height) == (1200, 2000)
    colors = set(pixels)
    assert len(colors) > 50, "screenshot is (nearly) blank"
    non_white = sum(1 for p in pixels if p != (255, 255, 255))
    assert non_white / len(pixels) > 0.02
    # fa2's series colour is on screen: the SVG charts were drawn, not just the text.
    assert any(all(abs(p[i] - FA2_ORANGE[i]) <= 4 for i in range(3)) for p in colors)


# -- writing -------------------------------------------------------------------------
def test_export_into_a_missing_directory_is_one_line_error(tmp_path):
    target = tmp_path / "nope" / "out.md"
    with pytest.raises(StorageError, match="directory .*nope does not exist") as info:
        export_session(fixed_session(), "md", target)
    assert "\n" not in str(info.value)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root ignores directory permissions; the EROFS test covers the path")
def test_export_into_a_read_only_directory_is_one_line_error(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(StorageError, match=r"cannot write .*ro/out\.md: Permission denied"):
            export_session(fixed_session(), "md", folder / "out.md")
    finally:
        folder.chmod(0o755)


def test_export_on_a_read_only_filesystem_is_one_line_error(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(atomic.tempfile, "mkstemp", refuse)
    with pytest.raises(StorageError) as info:
        export_session(fixed_session(), "csv", tmp_path / "out.csv")
    assert str(info.value) == f"cannot write {tmp_path / 'out.csv'}: Read-only file system"
    assert not (tmp_path / "out.csv").exists()


def test_disk_full_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "out.json"
    target.write_text("old")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(StorageError, match="No space left on device"):
        export_session(fixed_session(), "json", target)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_atomic_write_replaces_and_keeps_mode(tmp_path):
    target = tmp_path / "out.md"
    target.write_text("old")
    target.chmod(0o600)
    export_session(fixed_session(), "md", target)
    assert target.read_text().startswith("# flashtui session 20250314-091500-c0ffee")
    assert target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["out.md"]

