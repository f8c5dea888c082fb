"""`flashtui doctor` on a real CUDA GPU (run on the device: -m gpu).

Written against the team's H100 (torch 2.11+cu130, cuDNN 9.19, flash-attn-4, no FA2,
no FA3); assertions that depend on what is installed read it from the report itself.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.gpu

DOCTOR = [sys.executable, "-m", "flashtui", "doctor", "--quiet"]


def _doctor(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DOCTOR, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def report() -> dict:
    r = _doctor("--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    if data["provenance"]["device_kind"] != "cuda":
        pytest.skip("no CUDA device")
    return data


def _cell(report, backend, dtype, head_dim):
    return next(c for c in report["matrix"]["cells"]
                if (c["backend"], c["dtype"], c["head_dim"]) == (backend, dtype, head_dim))


def test_matrix_on_the_gpu(report):
    for head_dim in (64, 128, 256):
        cell = _cell(report, "sdpa-flash", "bf16", head_dim)
        assert cell["status"] == "ok", cell
        assert cell["backward"]["status"] == "ok", cell
    for backend in ("standard", "sdpa-math", "sdpa-efficient", "sdpa-cudnn"):
        assert _cell(report, backend, "bf16", 128)["status"] == "ok", backend
    # fp32 through the forced flash kernel: PyTorch's own reason, not just the registry's
    fp32 = _cell(report, "sdpa-flash", "fp32", 128)
    assert fp32["status"] == "unsupported"
    # the refusal names the kernel and the dtype (engine.backends._sdpa_refusal's wording)
    assert fp32["reason"].startswith("PyTorch's flash attention kernel refuses fp32"), fp32["reason"]
    assert _cell(report, "sdpa-cudnn", "fp32", 128)["status"] == "unsupported"
    for backend in ("fa2", "fa3", "fa4"):
        if not report["backends"][backend]["available"]:
            assert all(c["status"] == "unsupported" and c["reason"] for c in report["matrix"]["cells"]
                       if c["backend"] == backend)


def test_fa4_is_probed_only_where_available_and_its_time_is_reported(report):
    info = report["matrix"]["backends"]["fa4"]
    if not report["backends"]["fa4"]["available"]:
        assert info["cells_run"] == 0
        pytest.skip("flash-attn-4 not installed here")
    assert _cell(report, "fa4", "bf16", 128)["status"] == "ok"
    assert _cell(report, "fa4", "fp32", 128)["status"] == "unsupported"
    assert _cell(report, "fa4", "fp16", 64)["status"] == "not_probed"  # quick mode
    assert info["cells_run"] >= 1 and info["seconds"] > 1.0  # import + compile
    # Its one quick cell ran at the "fastest here" shape, so that timing reuses the compile.
    fastest = report["fastest"]["shape"]
    assert _cell(report, "fa4", "bf16", 128)["shape"] == {k: fastest[k] for k in ("batch", "heads", "seq")}


def test_probe_is_quick_and_every_backend_has_its_time(report):
    times = {name: info["seconds"] for name, info in report["matrix"]["backends"].items()}
    print("probe seconds per backend:", times, "total:", report["probe_seconds"])
    assert all(t is not None and t >= 0 for t in times.values())
    assert report["probe_seconds"] < 90


def test_fastest_short_probe_on_the_gpu(report):
    fastest = report["fastest"]
    assert fastest["shape"] == {"batch": 1, "heads": 16, "seq": 4096, "head_dim": 128, "dtype": "bf16",
                                "causal": True, "pass": "forward"}
    timed = {r["backend"]: r for r in fastest["rows"] if r["median_ms"] is not None}
    assert {"standard", "sdpa-flash"} <= set(timed)
    assert fastest["fastest"] != "standard"
    assert timed["sdpa-flash"]["speedup_vs_standard"] > 1.0


def test_advice_on_hopper(report):
    prov = report["provenance"]
    if prov["compute_capability"] != "9.0":
        pytest.skip("written for a Hopper GPU")
    text = "\n".join(report["advice"])
    assert "bf16 needs" not in text and "FA3 needs Hopper" not in text
    if not report["backends"]["fa2"]["available"]:
        torch_mm = ".".join(prov["torch"].split("+")[0].split(".")[:2])
        assert "pip install flash-attn --no-build-isolation" in text
        assert f"torch {torch_mm}" in text and f"CUDA {prov['cuda_runtime']}" in text
    if not report["backends"]["fa4"]["available"]:
        assert "pip install flash-attn-4" in text
    assert report["nvml"]["available"], report["nvml"]


def test_device_cpu_forces_the_cpu_path(report):
    r = _doctor("--json", "--device", "cpu", "--no-fastest")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["provenance"]["device_kind"] == "cpu"
    assert _cell(data, "standard", "fp32", 128)["status"] == "ok"
    assert "CUDA" in _cell(data, "sdpa-cudnn", "bf16", 128)["reason"]
    assert "--device cpu" in data["advice"][0]


def test_capacity_standard_vs_sdpa_flash(report):
    r = _doctor("--capacity", "--device", "cuda", "--backends", "standard,sdpa-flash", "--dtype", "bf16", "--batch", "1",
                "--heads", "16", "--head-dim", "128", "--max-seq", str(1 << 18), "--json", timeout=120)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    rows = {row["backend"]: row for row in result["rows"]}
    print({name: (row["max_seq_fit"], row["first_oom_seq"], row["tries"], row["seconds"])
           for name, row in rows.items()})
    standard, flash = rows["standard"], rows["sdpa-flash"]
    # standard materializes 16 x S x S scores: out of memory in the tens of thousands
    assert standard["limit"] == "oom", standard
    assert 8192 <= standard["max_seq_fit"] < standard["first_oom_seq"] <= 131072
    assert standard["first_oom_seq"] - standard["max_seq_fit"] <= 256
    # the fused kernel is O(S) in memory: far beyond, here up to the search cap
    assert flash["max_seq_fit"] >= 4 * standard["max_seq_fit"], flash
    assert sum(row["seconds"] for row in rows.values()) < 60
