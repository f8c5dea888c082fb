"""The doctor's parallel probe: several real CPU workers, one answer, the same as one worker's.

On a GPU box the slow backends (cuDNN, flex, fa4) each probe in a worker of their own so
their first-use costs overlap; here FLASHTUI_DOCTOR_GROUPS forces the split on the CPU so
the real merge over real workers is checked against the one-worker answer."""

from __future__ import annotations

import json
import subprocess
import sys

from flashtui.client import doctor_parallel as dp
from flashtui.core.doctor_merge import merge_probes, rank_fastest

DOCTOR = [sys.executable, "-m", "flashtui", "doctor", "--fresh", "--quiet"]


def _doctor(tmp_path, groups: str, *extra: str) -> subprocess.CompletedProcess:
    env = {**__import__("os").environ, "FLASHTUI_CACHE_DIR": str(tmp_path / f"cache-{len(groups)}"),
           "FLASHTUI_DATA_DIR": str(tmp_path / "data"), dp.GROUPS_ENV: groups}
    return subprocess.run([*DOCTOR, *extra], capture_output=True, text=True, env=env, timeout=600)


def test_three_workers_answer_what_one_worker_answers(tmp_path):
    split = _doctor(tmp_path, "sdpa-math;sdpa-flash,sdpa-efficient", "--json")
    one = _doctor(tmp_path, "", "--json")
    assert split.returncode == 0 and one.returncode == 0, split.stderr + one.stderr
    a, b = json.loads(split.stdout), json.loads(one.stdout)

    def cells(report):
        return [(c["backend"], c["dtype"], c["head_dim"], c["status"]) for c in report["matrix"]["cells"]]

    assert cells(a) == cells(b) and len(cells(a)) == 90
    assert list(a["matrix"]["backends"]) == list(b["matrix"]["backends"])
    assert [(c["backend"], c["variant"], c["path"], c["status"]) for c in a["variants"]["cells"]] == \
        [(c["backend"], c["variant"], c["path"], c["status"]) for c in b["variants"]["cells"]]
    assert a["advice"] == b["advice"]  # the CPU line speaks of every worker's cells
    assert [r["backend"] for r in a["fastest"]["rows"]] == [r["backend"] for r in b["fastest"]["rows"]]
    std = next(r for r in a["fastest"]["rows"] if r["backend"] == "standard")
    math = next(r for r in a["fastest"]["rows"] if r["backend"] == "sdpa-math")  # timed by a helper
    assert abs(math["speedup_vs_standard"] - std["median_ms"] / math["median_ms"]) < 1e-9
    workers = a["probe_workers"]
    assert [w["backends"] for w in workers[1:]] == [["sdpa-math"], ["sdpa-flash", "sdpa-efficient"]]
    assert "sdpa-math" not in workers[0]["backends"] and "standard" in workers[0]["backends"]
    assert len({w["pid"] for w in workers}) == 3
    assert b.get("probe_workers") is None
    # Every worker paid its backends' first call at the timing's shape during the parallel
    # phase, so the one-at-a-time timing ran warm.
    timed = [r for r in a["fastest"]["rows"] if r["status"] == "ok"]
    assert timed and all(r["first_call_s"] >= 0 for r in timed)


def test_the_text_report_says_how_it_probed(tmp_path):
    run = _doctor(tmp_path, "sdpa-math")
    assert run.returncode == 0, run.stderr
    assert "probed by 2 workers at once" in run.stdout
    assert 'the "fastest here" timings ran one worker at a time' in run.stdout


def test_groups_follow_the_machine():
    gpu = {"nvml": {"available": True}, "gpus": [{"name": "NVIDIA H200"}], "packages": {"flash_attn_4": "4.0.0b36"}}
    assert dp.helper_groups(gpu, None, serial=False) == [("sdpa", "sdpa-cudnn"), ("flex",), ("fa4",)]
    no_fa4 = {**gpu, "packages": {}}
    assert dp.helper_groups(no_fa4, None, serial=False) == [("sdpa", "sdpa-cudnn"), ("flex",)]
    assert dp.helper_groups(gpu, "cpu", serial=False) == []
    assert dp.helper_groups(gpu, None, serial=True) == []
    assert dp.helper_groups({"nvml": {"available": False, "reason": "no driver"}}, None, serial=False) == []


def test_a_helper_that_did_not_start_leaves_its_backends_to_the_main_worker():
    main, ok, failed = dp.Share(None, None), dp.Share(None, ("flex",)), dp.Share(None, ("fa4",))  # type: ignore[arg-type]
    ok.ready = object()  # type: ignore[assignment]
    failed.error = RuntimeError("could not start")
    order = ["standard", "sdpa", "flex", "fa4"]
    probing = dp.assign([main, ok, failed], order)
    assert probing == [main, ok]
    assert main.names == ("standard", "sdpa", "fa4")


def test_fastest_rows_from_several_workers_are_ranked_again():
    rows = [{"backend": "standard", "median_ms": 2.0, "noisy": False},
            {"backend": "fa4", "median_ms": 0.5, "noisy": True},
            {"backend": "flex", "median_ms": 1.0, "noisy": False}]
    best, noisy = rank_fastest(rows)
    assert best == "flex" and noisy == ["fa4"]  # a noisy row is never named fastest
    assert [r["speedup_vs_standard"] for r in rows] == [1.0, 4.0, 2.0]
    part = {"matrix": {"backends": {}, "cells": [], "poisoned": None}, "advice": ["a"], "variants": None}
    merged = merge_probes([part, {**part, "advice": ["a", "b"]}], ["standard"],
                          [{"rows": rows[:1], "label": "x"}, {"rows": rows[1:], "label": "x"}], 1.0, [])
    assert merged["advice"] == ["a", "b"] and merged["fastest"]["fastest"] == "flex"
