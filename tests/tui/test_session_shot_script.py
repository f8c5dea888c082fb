"""benchmarks/tui_session_shot.py: a stored session's Charts/Tables tabs as SVG, no worker."""

from __future__ import annotations

import html
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from flashtui.testing.stored import A_ID, write_session

REPO = Path(__file__).resolve().parents[2]


def script_env() -> dict[str, str]:
    """The script runs against this checkout's flashtui (benchmarks/ never edits sys.path)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
SCRIPT = REPO / "benchmarks" / "tui_session_shot.py"


def load_script():
    spec = importlib.util.spec_from_file_location("tui_session_shot", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def screen_rows(svg: Path) -> list[str]:
    """The screen's rows as a reader sees them: the SVG's <text> elements by y, then x."""
    rows: dict[float, list[tuple[float, str]]] = {}
    for x, y, text in re.findall(r'<text[^>]*? x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>', svg.read_text()):
        rows.setdefault(float(y), []).append((float(x), html.unescape(text).replace("\xa0", " ")))
    return ["".join(t for _, t in sorted(row)) for _, row in sorted(rows.items())]


def text_of(svg: Path) -> str:
    return "\n".join(screen_rows(svg))


def exported(tmp_path: Path) -> Path:
    """A small real session (the store helper's baseline), exported as JSON."""
    session = write_session(A_ID, "2025-01-01T12:00:00+00:00", 1.0)
    path = tmp_path / "tiny-session.json"
    path.write_text(json.dumps(session.to_dict()))
    return path


def test_main_saves_charts_and_tables_of_a_stored_session(isolated_dirs, capsys):
    source = exported(isolated_dirs)
    store_before = sorted((isolated_dirs / "data" / "sessions").iterdir())
    out = isolated_dirs / "shots"
    rc = load_script().main([str(source), "--out", str(out), "--view", "charts,tables", "--name", "tiny"])
    assert rc == 0, capsys.readouterr().err
    charts, tables = out / "tiny-charts.svg", out / "tiny-tables.svg"
    assert charts.read_text().lstrip().startswith("<svg") and tables.is_file()
    text = text_of(charts)
    for title in ("time vs seq", "memory vs seq (log)", "MiB (theory)", "speedup vs standard (x)",
                  "memory saving vs standard (x)"):
        assert title in text, title
    # Data drawn: the legends, the top of the time axis (standard at seq 128: 0.128 ms) and
    # of the speedup bars (standard / sdpa-flash = 1 / 0.3).
    assert "sdpa-flash" in text and "0.128" in text and "3.33" in text
    # Provenance: the viewer's info line and the script's sub-title.
    assert f"{A_ID} · 2025-01-01 12:00 · Test CPU · kernel · 6 cells · complete" in text
    assert "stored numbers drawn here · measured on Test CPU · torch 2.13.0+cpu" in text
    table_text = text_of(tables)
    assert "timing (median ± IQR)" in table_text and "parity vs fp64" in table_text
    row = next(line for line in screen_rows(tables) if line.split()[1:4] == ["sdpa-flash", "128", "fp32"])
    assert "38.4 ± 1.92 us" in row  # A's sdpa-flash seq=128: 0.3 x 0.128 ms
    # The script's own store was temporary: the caller's store and environment are as before.
    assert os.environ["FLASHTUI_DATA_DIR"] == str(isolated_dirs / "data")
    assert sorted((isolated_dirs / "data" / "sessions").iterdir()) == store_before
    assert capsys.readouterr().out.split() == [str(charts), str(tables)]


def test_bad_input_is_one_line_and_exit_2(isolated_dirs, capsys):
    script = load_script()
    not_a_session = isolated_dirs / "other.json"
    not_a_session.write_text('{"hello": "world"}')
    cases = {
        str(isolated_dirs / "missing.json"): "no such session file",
        str(not_a_session): "not a flashtui session",
    }
    for path, reason in cases.items():
        rc = script.main([path, "--out", str(isolated_dirs / "shots")])
        err = capsys.readouterr().err
        assert rc == 2 and "Traceback" not in err
        assert err.count("\n") == 1 and err.startswith("tui_session_shot: bad input:") and reason in err
    assert not (isolated_dirs / "shots").exists()


def test_command_line_never_imports_torch_and_reports_bad_input(isolated_dirs):
    """As run from a shell: no torch in the UI process; a bad file is one line, exit 2."""
    source = exported(isolated_dirs)
    out = isolated_dirs / "shots"
    probe = ("import runpy, sys\n"
             f"sys.argv = [{str(SCRIPT)!r}, {str(source)!r}, '--out', {str(out)!r}]\n"
             "try:\n"
             f"    runpy.run_path({str(SCRIPT)!r}, run_name='__main__')\n"
             "except SystemExit as exit:\n"
             "    bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers'))\n"
             "    print('imported:', bad)\n"
             "    sys.exit(exit.code)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                          env=script_env(), cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "imported: []" in done.stdout and (out / "tiny-session-charts.svg").is_file()

    bad = subprocess.run([sys.executable, str(SCRIPT), str(isolated_dirs / "nope.json")],
                         capture_output=True, text=True, timeout=60, env=script_env(), cwd=REPO)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr == f"tui_session_shot: bad input: no such session file: {isolated_dirs / 'nope.json'}\n"
