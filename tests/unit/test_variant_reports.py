"""Variants on every surface: the CLI table, Markdown, HTML, CSV, JSON, diff and the doctor.

One real `flashtui bench` decode run (worker on CPU) feeds the checks, so every surface
reads cells the engine really produced.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from flashtui.core.results import Cell
from flashtui.core.session import Session
from flashtui.reports import render_session
from flashtui.reports.diff import diff_sessions, render_diff
from flashtui.reports.doctor import render_variants
from flashtui.reports.table import render_session as render_table

BASE = [sys.executable, "-m", "flashtui", "bench", "--device", "cpu", "--heads", "4", "--kv-heads", "2",
        "--head-dim", "32", "--reps", "3", "--warmup-ms", "0", "--quiet", "--no-journal"]


@pytest.fixture(scope="module")
def decode_run():
    """A real decode sweep: q_len 1 against KV caches of 128 and 256 tokens, batch 2."""
    r = subprocess.run(BASE + ["--seq", "128,256", "--batch", "2", "--q-len", "1", "--window", "96",
                               "--backends", "standard,sdpa-math,sdpa-flash", "--json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return Session.from_dict(json.loads(r.stdout))


def test_decode_session_carries_the_variant_and_bandwidth(decode_run):
    assert decode_run.spec["q_len"] == 1 and decode_run.spec["window"] == 96
    for cell in decode_run.cells:
        assert cell.status == "ok" and cell.parity.passed
        assert cell.bound == "memory" and cell.gbps > 0 and cell.bytes > 0
        assert cell.extra["variant"]["label"] == "window 96, q-len 1"
        assert cell.extra["variant"]["q_len"] == 1 and cell.extra["variant"]["seq_k"] == cell.seq
    # A decode step with a 96-token window reads 96 keys per row, at either cache length.
    by_seq = {c.seq: c for c in decode_run.cells if c.backend == "standard"}
    assert by_seq[128].bytes == by_seq[256].bytes


def test_cli_table_judges_decode_on_bandwidth(decode_run):
    text = render_table(decode_run)
    header = next(line for line in text.splitlines() if line.startswith("backend"))
    assert "GB/s" in header and "%HBM" in header and "FLOP/s" in header
    assert "< memory-bound" in text and "GB/s<" in text
    assert "[window 96, q-len 1]" in text
    assert "variant:" in text and "standard: mask:" in text


def test_markdown_html_csv_json_carry_the_variant(decode_run):
    md = render_session(decode_run, "md")
    assert "variant: window 96, q-len 1" in md
    assert "| GB/s | % HBM |" in md and "(judged)" in md
    assert "Variant paths:" in md
    # The fastest finding says its GB/s, from trustworthy cells only: on a loaded box this
    # real CPU run's cells may be noisy, and then no cell is cited (and the report says why).
    if any(c.trustworthy for c in decode_run.cells):
        assert "FLOP/byte, memory-bound): " in md
    else:
        assert "noisy, left out of these findings" in md
    html = render_session(decode_run, "html")
    assert "Memory-bound cells: bandwidth vs KV length" in html and "<th>GB/s</th>" in html
    rows = list(csv.DictReader(io.StringIO(render_session(decode_run, "csv"))))
    assert {"flops", "bytes", "gbps", "pct_bw_peak", "bound"} <= set(rows[0])
    assert all(float(r["gbps"]) > 0 and r["bound"] == "memory" and r["pct_bw_peak"] == "NA" for r in rows)
    again = Session.from_dict(json.loads(render_session(decode_run, "json")))
    assert again.spec["window"] == 96 and again.cells[0].gbps == decode_run.cells[0].gbps


def test_dense_sessions_keep_their_old_columns():
    from flashtui.core.spec import SweepSpec

    session = Session(spec=SweepSpec(device="cpu", seqs=(64,)).to_dict(),
                      cells=[Cell("standard", 64, "fp32", median_ms=1.0)])
    assert "GB/s" not in render_table(session)
    assert "GB/s" not in render_session(session, "md")


def test_diff_says_when_the_variant_differs(decode_run):
    dense = Session.from_dict(decode_run.to_dict())
    dense.spec = {k: v for k, v in dense.spec.items() if k not in ("window", "q_len")}
    text = render_diff(diff_sessions(dense, decode_run))
    assert "variant changed: dense -> window 96, q-len 1 (not the same problem)" in text
    assert diff_sessions(dense, decode_run).to_dict()["variant"] == {"a": "dense", "b": "window 96, q-len 1"}
    assert "variant: window 96, q-len 1" in render_diff(diff_sessions(decode_run, decode_run))


def test_doctor_variant_rows_render_native_mask_and_why_not():
    variants = {"variants": ["window", "softcap"], "cases": {"window": {"window": 48}, "softcap": {"softcap": 20.0}},
                "shape": {"batch": 2, "heads": 2, "seq": 128, "head_dim": 64, "dtype": "bf16"},
                "cells": [
                    {"backend": "sdpa-flash", "variant": "window", "path": "no", "status": "unsupported",
                     "reason": "PyTorch refused sdpa-flash: attn_mask"},
                    {"backend": "sdpa-flash", "variant": "softcap", "path": "no", "status": "unsupported",
                     "reason": "no tanh soft-capping"},
                    {"backend": "flex", "variant": "window", "path": "native", "status": "not_probed"},
                    {"backend": "flex", "variant": "softcap", "path": "native", "status": "ok"},
                    {"backend": "standard", "variant": "window", "path": "mask", "status": "ok"},
                    {"backend": "standard", "variant": "softcap", "path": "native", "status": "failed",
                     "reason": "ran but the output is wrong"}]}
    text = render_variants(variants)
    lines = {line.split()[0]: line.split()[1:] for line in text.splitlines()[3:6]}
    assert lines == {"sdpa-flash": ["-", "-"], "flex": ["native?", "native"], "standard": ["mask", "FAIL"]}
    assert "window [sdpa-flash]: PyTorch refused sdpa-flash: attn_mask" in text
    assert render_variants(None) == "variants: NA (not probed)"
