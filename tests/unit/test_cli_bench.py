"""`flashtui bench` as a user runs it: real subprocess, real worker, CPU."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

BASE = [sys.executable, "-m", "flashtui", "bench", "--device", "cpu", "--heads", "2", "--head-dim", "32",
        "--reps", "3", "--warmup-ms", "0", "--quiet"]


def _run(args, **kw):
    return subprocess.run(BASE + args, capture_output=True, text=True, timeout=180, **kw)


def test_bench_json_has_the_documented_schema(tmp_path):
    out_path = tmp_path / "s.json"
    r = _run(["--seq", "64", "--backends", "standard,sdpa-math,fa4", "--json", "--out", str(out_path)])
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert json.loads(out_path.read_text()) == data
    assert data["schema"] == {"name": "flashtui.session", "version": 1}
    assert {"provenance", "cells", "spec"} <= set(data)
    prov = data["provenance"]
    for key in ("device_name", "torch", "python", "flashtui"):
        assert prov[key]
    cells = {c["backend"]: c for c in data["cells"]}
    for key in ("backend", "seq", "dtype", "status", "reason", "median_ms", "iqr_ms", "tflops",
                "peak_alloc_bytes", "theory_bytes", "parity"):
        assert key in cells["standard"]
    for key in ("max_abs", "mean_abs", "rel_l2", "ratio_vs_standard", "passed"):
        assert key in cells["sdpa-math"]["parity"]
    assert cells["sdpa-math"]["speedup_vs_standard"] > 0
    assert cells["fa4"]["status"] == "unsupported" and cells["fa4"]["median_ms"] is None
    assert data["worker"]["ready_s"] > 0


def test_bench_table_default_backends():
    r = _run(["--seq", "64"])
    assert r.returncode == 0, r.stderr
    assert "standard" in r.stdout and "sdpa-flash" in r.stdout
    assert "not available here" in r.stdout and "fa2:" in r.stdout


@pytest.mark.parametrize("args, needle", [
    (["--seq", "0"], "seq must be a positive integer, got 0"),
    (["--seq", "-1"], "positive integer"),
    (["--seq", "abc"], "got 'abc'"),
    (["--seq", str(10**9)], "larger than the supported maximum"),
    (["--dtype", "int8"], "unknown dtype"),
    (["--backends", "flash9"], "unknown backend"),
    (["--batch", "0"], "batch must be a positive integer"),
    (["--heads", "6", "--kv-heads", "4"], "multiple of kv_heads"),
    (["--mode", "prefill"], "needs --model"),
    (["--out", "/nonexistent-dir/x.json"], "does not exist"),
])
def test_bad_input_is_one_line_and_exit_2(args, needle):
    r = _run(args)
    assert r.returncode == 2
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_cuda_requested_without_gpu_is_one_line():
    r = subprocess.run([sys.executable, "-m", "flashtui", "bench", "--device", "cuda", "--quiet"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "--device cuda but" in r.stderr and "Traceback" not in r.stderr


def test_bench_journals_the_session_and_export_reads_it(tmp_path):
    env = {**__import__("os").environ, "FLASHTUI_DATA_DIR": str(tmp_path / "data")}
    r = _run(["--seq", "64", "--backends", "standard,sdpa-flash"], env=env)
    assert r.returncode == 0, r.stderr
    listed = subprocess.run([sys.executable, "-m", "flashtui", "sessions", "--json"], capture_output=True,
                            text=True, env=env, timeout=60)
    sessions = json.loads(listed.stdout)
    assert len(sessions) == 1 and sessions[0]["n_cells"] == 2 and sessions[0]["status"] == "complete"
    md = subprocess.run([sys.executable, "-m", "flashtui", "export", "latest", "--format", "md"],
                        capture_output=True, text=True, env=env, timeout=60)
    assert md.returncode == 0 and "sdpa-flash" in md.stdout


def test_bench_profile_writes_speedscope_with_worker_frames(tmp_path):
    from flashtui.monitor.pyspy import find_pyspy, validate_speedscope

    if find_pyspy() is None:
        pytest.skip("py-spy not installed")
    prof = tmp_path / "prof.json"
    r = _run(["--seq", "64,128", "--backends", "standard,sdpa-math", "--reps", "20", "--profile", str(prof), "--json"])
    assert r.returncode == 0, r.stderr
    summary = validate_speedscope(prof, top_n=50)
    assert summary["n_samples"] > 0
    files = json.dumps(json.loads(prof.read_text())["shared"]["frames"])
    assert "flashtui/engine" in files  # the worker's own frames are in the profile
    data = json.loads(r.stdout)
    assert data["attachments"]["profile"]["n_samples"] == summary["n_samples"]
    # Every cell ran under py-spy record, and says so.
    assert len(data["cells"]) == 4 and all(c["extra"]["timed_under_pyspy_record"] for c in data["cells"])
    from flashtui.core.session import Session
    from flashtui.reports.table import render_session

    assert "4 of 4 cells were timed under py-spy record" in render_session(Session.from_dict(data))


@pytest.mark.parametrize("model, needle", [
    ("nope", "unknown model 'nope'"),
    ("/no/such/dir", "is not a directory"),
    ("no-such-org/no-such-model", "Hub"),
])
def test_bad_model_is_one_line_exit_2_and_never_hangs(model, needle, tmp_path):
    env = {**__import__("os").environ, "HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": "http://127.0.0.1:9"}
    r = _run(["--mode", "prefill", "--model", model, "--seq", "32"], env=env)
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], r.stderr


def test_a_cpu_table_says_why_its_gpu_columns_are_na():
    from flashtui.core.results import Cell
    from flashtui.core.session import Session
    from flashtui.reports.table import render_session

    session = Session(spec={"device": "cpu", "mode": "kernel", "seqs": [64], "dtypes": ["fp32"]})
    session.add_cell(Cell("standard", 64, "fp32", status="ok", median_ms=0.09, iqr_ms=0.008))
    text = render_session(session)
    assert "kernel, host, peak mem, %peak: NA on the CPU (no CUDA graph to replay" in text
    assert "CUDA-graph replay" not in text  # the GPU footnote is not printed for a CPU run
