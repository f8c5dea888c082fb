"""`flashtui doctor` on this machine (CPU torch, no GPU, no NVML): real CLI, real worker.

Plus the pure parts on their own: the capacity search against a fake backend that runs
out of memory at a known length, the cell judge against a kernel that computes the
wrong thing, the advice for GPUs this machine does not have, and the renderer.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from flashtui.reports.doctor import render_capacity, render_matrix, render_report

DOCTOR = [sys.executable, "-m", "flashtui", "doctor", "--quiet"]
CPU_BACKENDS = ("standard", "sdpa", "sdpa-math", "sdpa-flash")
CUDA_ONLY = ("sdpa-efficient", "sdpa-cudnn", "flex", "fa2", "fa3", "fa4")


def _doctor(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DOCTOR, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def report() -> dict:
    r = _doctor("--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def cpu_only(report) -> None:
    if report["provenance"]["device_kind"] == "cuda":
        pytest.skip("these assertions describe a machine without a usable GPU")


def _cells(report, backend):
    return [c for c in report["matrix"]["cells"] if c["backend"] == backend]


# ------------------------------------------------------------------ doctor --json
def test_json_has_the_documented_schema(report):
    assert report["schema"] == {"name": "flashtui.doctor", "version": 1}
    assert {"provenance", "nvml", "pyspy", "backends", "matrix", "fastest", "advice"} <= set(report)
    for key in ("torch", "python", "device_kind", "flashtui"):
        assert report["provenance"][key]
    matrix = report["matrix"]
    assert matrix["dtypes"] == ["fp32", "fp16", "bf16"] and matrix["head_dims"] == [64, 128, 256]
    # Every backend x dtype x head_dim has exactly one cell, with a known status.
    keys = [(c["backend"], c["dtype"], c["head_dim"]) for c in matrix["cells"]]
    assert len(keys) == len(set(keys)) == len(report["backends"]) * 3 * 3
    assert {c["status"] for c in matrix["cells"]} <= {"ok", "unsupported", "failed", "not_probed"}
    assert set(matrix["backends"]) == set(report["backends"])


def test_variant_rows_ran_and_say_native_mask_or_why_not(report, cpu_only):
    """Each CPU backend ran each variant against the fp64 oracle with the same variant."""
    variants = report["variants"]
    assert variants["variants"] == ["window", "softcap", "docs", "pad", "decode", "paged"]
    cells = {(c["backend"], c["variant"]): c for c in variants["cells"]}
    assert {b for b, _ in cells} == set(CPU_BACKENDS)
    for (backend, variant), cell in cells.items():
        if variant == "paged" or (variant == "softcap" and backend != "standard"):
            assert cell["path"] == "no" and cell["status"] == "unsupported" and cell["reason"]
        else:
            assert cell["status"] == "ok", cell
            assert cell["path"] in ("native", "mask") and cell["max_abs_err"] < 1e-4
    assert cells[("standard", "window")]["path"] == "mask"
    assert cells[("sdpa", "decode")]["path"] == "native"
    assert "variants (each ran" in render_report(report)


def test_cpu_backends_really_ran_in_fp32_at_every_head_dim(report, cpu_only):
    for backend in CPU_BACKENDS:
        fp32 = [c for c in _cells(report, backend) if c["dtype"] == "fp32"]
        assert sorted(c["head_dim"] for c in fp32) == [64, 128, 256]
        for cell in fp32:
            assert cell["status"] == "ok", cell
            # judged against the fp64 reference, forward and backward
            assert cell["max_abs_err"] is not None and cell["max_abs_err"] < 1e-4
            assert cell["backward"]["status"] == "ok" and cell["backward"]["max_rel_err"] < 1e-4
        info = report["matrix"]["backends"][backend]
        assert info["cells_run"] == 9 and info["seconds"] > 0


def test_cuda_backends_are_unsupported_with_a_reason_naming_cuda(report, cpu_only):
    for backend in CUDA_ONLY:
        cells = _cells(report, backend)
        assert cells and all(c["status"] == "unsupported" for c in cells)
        assert all("CUDA" in c["reason"] for c in cells), cells[0]
        assert report["backends"][backend]["available"] is False
        assert report["matrix"]["backends"][backend]["cells_run"] == 0


def test_nvml_state_is_reported_with_its_reason(report):
    nvml = report["nvml"]
    if nvml["available"]:
        pytest.skip("NVML works on this machine")
    assert nvml["reason"] and nvml["device_count"] == 0


def test_pyspy_state_is_reported(report):
    pyspy = report["pyspy"]
    assert isinstance(pyspy["available"], bool)
    assert (pyspy["path"] is not None) == pyspy["available"]
    assert pyspy["available"] or "pip install py-spy" in pyspy["reason"]


def test_advice_says_what_runs_on_cpu_and_why_the_gpu_ones_do_not(report, cpu_only):
    advice = report["advice"]
    assert advice and all(isinstance(line, str) and line for line in advice)
    cpu_line = next(line for line in advice if line.startswith("On CPU"))
    for backend in CPU_BACKENDS + CUDA_ONLY:
        assert backend in cpu_line
    reason = ("CPU-only build" if report["provenance"]["cuda_runtime"] is None else "GPU")
    assert reason in cpu_line


def test_fastest_is_a_labelled_short_probe_of_backends_that_ran(report, cpu_only):
    fastest = report["fastest"]
    shape = fastest["shape"]
    assert "short probe" in fastest["label"]
    assert f"B={shape['batch']} H={shape['heads']} S={shape['seq']} D={shape['head_dim']}" in fastest["label"]
    assert fastest["shape"]["dtype"] == "fp32"
    timed = {r["backend"]: r for r in fastest["rows"] if r["median_ms"] is not None}
    assert set(timed) == set(CPU_BACKENDS)
    # The fastest is the quickest steady timing; a noisy row is never named (it has a reason).
    steady = {b: r for b, r in timed.items() if not r["noisy"]}
    assert fastest["fastest"] == (min(steady, key=lambda b: steady[b]["median_ms"]) if steady else None)
    assert all(r["noise_reason"] for r in timed.values() if r["noisy"])
    assert fastest["noisy_backends"] == [b for b, r in timed.items() if r["noisy"]]
    assert timed["standard"]["speedup_vs_standard"] == pytest.approx(1.0)
    assert all(r["reps"] >= 3 and r["median_ms"] > 0 for r in timed.values())


def _fastest_row(backend, median_ms, noisy=False):
    return {"backend": backend, "status": "ok", "median_ms": median_ms, "iqr_ms": median_ms / 20,
            "reps": 10, "speedup_vs_standard": None, "seconds": 0.1, "reason": None, "noisy": noisy,
            "noise_reason": "IQR 40% of median" if noisy else None}


def test_the_fastest_verdict_never_names_a_noisy_timing():
    from flashtui.reports.doctor import render_fastest

    fastest = {"label": "short probe", "rows": [_fastest_row("standard", 2.0), _fastest_row("sdpa", 0.5, True)],
               "fastest": "standard", "noisy_backends": ["sdpa"]}
    text = render_fastest(fastest)
    assert text.startswith("fastest here: standard (of the steady timings; sdpa too noisy to rank)")
    assert "noisy: IQR 40% of median" in text
    every_noisy = {**fastest, "rows": [_fastest_row("sdpa", 0.5, True)], "fastest": None}
    assert render_fastest(every_noisy).startswith("fastest here: NA (every timing was noisy")


def test_report_renders_from_the_json(report):
    text = render_report(report)
    assert "capability matrix" in text and "fastest here:" in text and "advice:" in text
    table = render_matrix(report["matrix"])
    for backend in report["backends"]:
        assert any(line.startswith(backend + " ") for line in table.splitlines())


def test_a_cell_run_at_another_shape_is_said_under_the_matrix(report):
    """On a GPU, flex's and fa4's one quick cell runs at the "fastest here" shape (one
    compile for both); the table says which backends did and at what shape."""
    matrix = {**report["matrix"], "cells": [dict(c) for c in report["matrix"]["cells"]]}
    assert "the quick cell ran forward" not in render_matrix(matrix)
    cell = next(c for c in matrix["cells"] if c["backend"] == "standard" and c["head_dim"] == 128)
    cell["shape"] = {"batch": 1, "heads": 16, "seq": 4096}
    text = render_matrix(matrix)
    assert "standard: the quick cell ran forward at B=1 H=16 S=4096, the \"fastest here\" shape" in text


# ------------------------------------------------------------------ human report
def test_human_report_runs():
    r = _doctor("--no-fastest")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for needle in ("torch", "Python", "NVML", "py-spy", "flash-attn-4", "capability matrix",
                   "sdpa-flash", "advice:", "fastest here: NA"):
        assert needle in out, needle
    assert r.stderr == ""


# ------------------------------------------------------------------ capacity
def test_capacity_on_cpu_finds_a_fit_up_to_the_cap():
    r = _doctor("--capacity", "--device", "cpu", "--max-seq", "2048", "--heads", "2", "--head-dim", "32",
                "--backends", "standard,sdpa-flash,fa4", "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["schema"]["name"] == "flashtui.doctor.capacity"
    assert result["spec"]["heads"] == 2 and result["cap_seq"] == 2048 and result["pass"] == "forward"
    rows = {row["backend"]: row for row in result["rows"]}
    for backend in ("standard", "sdpa-flash"):
        row = rows[backend]
        assert row["max_seq_fit"] == 2048 and row["first_oom_seq"] is None
        assert row["limit"] == "cap" and "memory is not the limit" in row["reason"]
        assert row["tries"] == 2 and row["seconds"] > 0
    assert rows["fa4"]["max_seq_fit"] is None and "CUDA" in rows["fa4"]["reason"]
    assert "2048" in render_capacity(result)


@pytest.mark.parametrize("args, needle", [
    (["--capacity", "--max-seq", "10"], "must be greater than the start sequence"),
    (["--capacity", "--dtype", "int8"], "unknown dtype"),
    (["--capacity", "--backends", "flash9"], "unknown backend"),
    (["--capacity", "--heads", "6", "--kv-heads", "4"], "multiple of kv_heads"),
    (["--capacity", "--batch", "0"], "batch must be a positive integer"),
    (["--batch", "2"], "only used with --capacity"),
    (["--device", "tpu"], "invalid choice"),
])
def test_bad_input_is_one_line_and_exit_2(args, needle):
    r = _doctor(*args, timeout=60)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("flashtui: error:") and needle in lines[0]
    assert r.stdout == ""


def test_device_cuda_without_a_gpu_is_one_line_and_exit_2(cpu_only):
    r = _doctor("--device", "cuda", timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "--device cpu" in r.stderr


def test_client_side_modules_never_load_torch():
    code = ("import sys, flashtui.commands.doctor, flashtui.reports.doctor; "
            "print('torch' in sys.modules, 'textual' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# ------------------------------------------------------------------ engine parts, in process
def _fake_backend(prepare):
    from flashtui.engine.backends import REGISTRY

    return dataclasses.replace(REGISTRY["standard"], name="fake", prepare=prepare)


def _oom_above(limit_seq: int):
    import torch

    from flashtui.engine.backends import Prepared

    seen: list[int] = []

    def prepare(q, k, v, shape):
        seen.append(shape.seq)
        if shape.seq > limit_seq:
            raise torch.OutOfMemoryError(f"CUDA out of memory (fake, seq {shape.seq})")
        return Prepared(forward=lambda: q, inputs=(q, k, v))
    return prepare, seen


@pytest.mark.parametrize("limit_seq, start, cap, expect_fit, expect_oom", [
    (5000, 1024, 1 << 20, 4864, 5120),   # doubling to 8192, bisect to 256 above 4096
    (1500, 1024, 1 << 20, 1472, 1536),   # bisect to 64 below 4096
    (300, 1024, 1 << 20, 256, 320),      # the start does not fit: halve, then bisect
])
def test_capacity_search_brackets_the_limit(limit_seq, start, cap, expect_fit, expect_oom, monkeypatch):
    import flashtui.engine.capability as capability
    from flashtui.engine.backends import DeviceInfo
    from flashtui.engine.capability import _capacity_row
    from flashtui.core.spec import SweepSpec

    monkeypatch.setattr(capability, "release", lambda device: None)  # a gc pass per try, for nothing here
    prepare, seen = _oom_above(limit_seq)
    spec = SweepSpec(device="cpu", seqs=(start,), dtypes=("fp32",), heads=1, head_dim=8)
    row = _capacity_row(_fake_backend(prepare), spec, "fp32", DeviceInfo("cpu", "cpu"), start, cap,
                        lambda text: None, lambda: False)
    assert row["max_seq_fit"] == expect_fit and row["first_oom_seq"] == expect_oom
    assert row["limit"] == "oom" and row["tries"] == len(seen)
    assert all(s <= limit_seq for s in seen if s <= row["max_seq_fit"])


def test_capacity_search_stops_on_a_non_oom_failure():
    from flashtui.engine.backends import DeviceInfo
    from flashtui.engine.capability import _capacity_row
    from flashtui.core.spec import SweepSpec

    def prepare(q, k, v, shape):
        if shape.seq >= 2048:
            raise ValueError("kernel exploded")
        from flashtui.engine.backends import Prepared
        return Prepared(forward=lambda: q, inputs=(q, k, v))

    spec = SweepSpec(device="cpu", seqs=(1024,), dtypes=("fp32",), heads=1, head_dim=8)
    row = _capacity_row(_fake_backend(prepare), spec, "fp32", DeviceInfo("cpu", "cpu"), 1024, 8192,
                        lambda text: None, lambda: False)
    assert row["max_seq_fit"] == 1024 and row["first_oom_seq"] is None and row["limit"] == "error"
    assert "kernel exploded" in row["reason"] and "lower bound" in row["reason"]


def test_a_kernel_that_computes_the_wrong_thing_fails_its_cell():
    from flashtui.engine.backends import DeviceInfo, Prepared, Shape, standard_attention
    from flashtui.engine.capability import _run_cell

    def non_causal(q, k, v, shape):  # ignores the causal mask
        return Prepared(forward=lambda: standard_attention(q, k, v, causal=False), inputs=(q, k, v))

    shape = Shape(1, 2, 2, 128, 64, "fp32", causal=True, backward=False)
    cell = _run_cell(_fake_backend(non_causal), shape, DeviceInfo("cpu", "cpu"), backward=True,
                     registry_reason=None)
    assert cell["status"] == "failed" and "output is wrong" in cell["reason"]
    good = _run_cell(_fake_backend(lambda q, k, v, s: Prepared(
        forward=lambda: standard_attention(q, k, v, True), inputs=tuple(t.requires_grad_() for t in (q, k, v)))),
        shape, DeviceInfo("cpu", "cpu"), backward=True, registry_reason=None)
    assert good["status"] == "ok" and good["backward"]["status"] == "ok"


PROV = {"torch": "2.11.0+cu130", "cuda_runtime": "13.0", "python": "3.11.7"}


def _advice_for(capability, available=("standard",)):
    from flashtui.engine.backends import DeviceInfo
    from flashtui.engine.capability import advice

    backends = {name: {"available": name in available} for name in
                ("standard", "sdpa-flash", "fa2", "fa3", "fa4")}
    return advice(PROV, backends, DeviceInfo("cuda", "gpu", capability))


def test_advice_for_a_turing_gpu():
    text = "\n".join(_advice_for((7, 5)))
    assert "bf16 needs compute capability >= 8.0" in text
    assert "FA3 needs Hopper (sm90)" in text and "sm75" in text
    assert "flash-attn-4" not in text
    assert "pip install flash-attn" not in text  # FA2 itself needs Ampere


def test_advice_for_an_h100_without_flash_attn():
    lines = _advice_for((9, 0))
    install = next(line for line in lines if "pip install flash-attn --no-build-isolation" in line)
    assert "torch 2.11" in install and "CUDA 13.0" in install and "cp311" in install
    assert "cu13torch2.11" in install
    assert any("pip install flash-attn-4" in line for line in lines)
    assert any("hopper" in line for line in lines)  # FA3 build instructions
    assert not any("bf16 needs" in line for line in lines)


def test_advice_with_everything_installed_on_hopper_mentions_no_install():
    lines = _advice_for((9, 0), available=("standard", "sdpa-flash", "fa2", "fa3", "fa4"))
    assert not any("not installed" in line for line in lines)


def test_matrix_renderer_marks_and_groups_reasons():
    def cell(dtype, head_dim, status="ok", reason=None, backward="ok"):
        return {"backend": "x", "dtype": dtype, "head_dim": head_dim, "status": status, "reason": reason,
                "note": None, "backward": {"status": backward, "reason": "grad NaN"} if backward else None}
    cells = [cell("fp32", h, "unsupported", "needs fp16") for h in (64, 128)]
    cells += [cell("bf16", 64, backward="failed"), cell("bf16", 128, "failed", "boom", None)]
    matrix = {"dtypes": ["fp32", "bf16"], "head_dims": [64, 128], "shape": {}, "cells": cells,
              "backends": {"x": {"available": True, "cells_run": 2, "seconds": 0.5}}}
    text = render_matrix(matrix)
    row = next(line for line in text.splitlines() if line.startswith("x "))
    assert row.split() == ["x", "-", "-", "ok*", "FAIL", "0.500", "s"]
    assert "  x [fp32]: needs fp16" in text
    assert "  x [bf16/64]: backward: grad NaN" in text and "  x [bf16/128]: boom" in text
