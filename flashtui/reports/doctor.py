"""The doctor report: build it from plain dicts, render it as text. No torch, no textual.

``flashtui doctor`` and the TUI's Doctor screen both use this module: the worker's
``ProbeFinished`` result (engine.capability.probe) plus what only the client can see
(NVML, py-spy) become one JSON-able report (:func:`build_report`, schema
``flashtui.doctor`` v1), and :func:`render_report` turns it into text a terminal, a log
or a bug report can hold. Missing values print as NA, never 0.
"""

from __future__ import annotations

from typing import Any, Iterable

from flashtui.reports.table import render_rows
from flashtui.core.units import NA, fmt_bytes, fmt_ms, fmt_ratio, fmt_seconds

SCHEMA = {"name": "flashtui.doctor", "version": 1}
CAPACITY_SCHEMA = {"name": "flashtui.doctor.capacity", "version": 1}

# One short mark per matrix cell; the reasons are listed under the table.
MARKS = {"ok": "ok", "unsupported": "-", "failed": "FAIL", "not_probed": "?"}
LEGEND = ("ok: ran and matched an fp64 reference (ok* = forward ok, backward failed); "
          "-: unsupported; FAIL: failed; ?: not probed")


def _na(value: Any) -> str:
    return NA if value is None or value == "" else str(value)


# ------------------------------------------------------------------ building
def client_advice(nvml: dict[str, Any], pyspy: dict[str, Any], device_kind: str | None) -> list[str]:
    """Advice only the client side can give (its NVML and py-spy)."""
    out = []
    if not nvml.get("available") and device_kind == "cuda":
        out.append(f"NVML is unavailable, so the live memory/clock monitor is off: {nvml.get('reason')}")
    if not pyspy.get("available"):
        out.append(f"py-spy is absent, so worker stack dumps and profiles are off: {pyspy.get('reason')}")
    return out


def build_report(ready: dict[str, Any], probe_result: dict[str, Any], nvml: dict[str, Any],
                 pyspy: dict[str, Any], notes: Iterable[str] = (),
                 cache: dict[str, Any] | None = None) -> dict[str, Any]:
    """One JSON object: schema, provenance, nvml, pyspy, backends, matrix, fastest, advice.

    ``ready`` is the worker's WorkerReady data, ``probe_result`` its ProbeFinished result.
    ``notes`` go first in the advice (e.g. "forced onto the CPU by --device cpu").
    ``cache``: where the answer came from (cached, cached_age_s, probed_at_unix, path,
    changes); its first three become top-level fields.
    """
    cache = cache or {}
    provenance = ready.get("provenance", {})
    advice = [*notes, *probe_result.get("advice", []),
              *client_advice(nvml, pyspy, provenance.get("device_kind"))]
    return {
        "schema": dict(SCHEMA),
        "provenance": provenance,
        "nvml": nvml,
        "pyspy": pyspy,
        "backends": ready.get("backends", {}),
        "matrix": probe_result.get("matrix"),
        "fastest": probe_result.get("fastest"),
        "variants": probe_result.get("variants"),
        "advice": advice,
        "probe_seconds": probe_result.get("seconds"),
        "probe_workers": probe_result.get("workers"),
        "worker_ready_s": ready.get("ready_s"),
        "cached": bool(cache.get("cached")),
        "cached_age_s": cache.get("cached_age_s"),
        "probed_at_unix": cache.get("probed_at_unix"),
        "cache": {k: cache.get(k) for k in ("path", "changes", "write_error") if k in cache},
    }


# Top-level report fields that say when and where from, not what: a cached answer and the
# probe that produced it differ only in these.
PROVENANCE_OF_ANSWER = ("cached", "cached_age_s", "cache")


# ------------------------------------------------------------------ rendering
def render_environment(report: dict[str, Any]) -> str:
    """GPU, driver, CUDA, torch, cuDNN, flash-attn builds, Python, NVML, py-spy."""
    prov = report.get("provenance") or {}
    nvml = report.get("nvml") or {}
    pyspy = report.get("pyspy") or {}
    cuda = prov.get("device_kind") == "cuda"
    names = list(nvml.get("device_names") or [])
    if cuda:
        gpu = prov.get("device_name") or NA
        count = prov.get("device_count")
        if count and count > 1:
            gpu += f" (device {prov.get('device_index', 0)} of {count})"
        if len(names) > 1 or (names and names[0] != prov.get("device_name")):
            gpu += f"; NVML sees: {', '.join(names)}"
    else:
        gpu = f"none used: {prov.get('cuda_unavailable_reason') or 'no CUDA device'}"
        if names:
            gpu += f" (NVML sees: {', '.join(names)})"
    torch_version = prov.get("torch") or NA
    torch_build = (f"{torch_version} (CUDA {prov['cuda_runtime']} build)" if prov.get("cuda_runtime")
                   else f"{torch_version} (CPU-only build)")

    def pkg(value: str | None) -> str:
        return value or "not installed"

    rows = [
        ("GPU", gpu),
        ("compute capability", _na(prov.get("compute_capability")) if cuda else NA),
        ("GPU memory", fmt_bytes(prov.get("total_memory_bytes")) if cuda else NA),
        ("CPU", prov.get("device_name") if not cuda else NA),
        ("driver", _na(prov.get("driver") or nvml.get("driver_version"))),
        ("CUDA runtime (torch)", _na(prov.get("cuda_runtime"))),
        ("torch", torch_build),
        ("cuDNN", _na(prov.get("cudnn"))),
        ("transformers", pkg(prov.get("transformers"))),
        ("flash-attn (FA2)", pkg(prov.get("flash_attn"))),
        ("FA3 (flash_attn_interface)", pkg(prov.get("flash_attn_3"))),
        ("flash-attn-4", pkg(prov.get("flash_attn_4"))),
        ("Python", _na(prov.get("python"))),
        ("NVML", (f"ok, driver {nvml.get('driver_version')}, {nvml.get('device_count')} GPU(s)"
                  if nvml.get("available") else f"unavailable: {nvml.get('reason')}")),
        ("py-spy", pyspy.get("path") if pyspy.get("available") else f"absent: {pyspy.get('reason')}"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows if v is not None)


def _cell_mark(cell: dict[str, Any]) -> str:
    mark = MARKS.get(cell.get("status"), cell.get("status") or NA)
    backward = cell.get("backward")
    if cell.get("status") == "ok" and backward and backward.get("status") != "ok":
        mark = "ok*"
    return mark


def _scope(where: list[tuple[str, int]], dtypes: list[str], head_dims: list[int]) -> str:
    """[("fp32", 64), ("fp32", 128), ("fp32", 256), ("bf16", 64)] -> "fp32, bf16/64"."""
    if len(where) == len(dtypes) * len(head_dims):
        return "all"
    parts = []
    for dtype in dtypes:
        dims = [h for d, h in where if d == dtype]
        if dims:
            parts.append(dtype if len(dims) == len(head_dims) else f"{dtype}/{','.join(map(str, dims))}")
    return ", ".join(parts)


def _reason_lines(name: str, cells: list[dict[str, Any]], dtypes: list[str], head_dims: list[int]) -> list[str]:
    """Each distinct reason of one backend once, with the cells it applies to."""
    grouped: dict[str, list[tuple[str, int]]] = {}
    for cell in cells:
        where = (cell["dtype"], cell["head_dim"])
        if cell.get("status") != "ok":
            grouped.setdefault(cell.get("reason") or cell.get("status"), []).append(where)
        elif cell.get("backward") and cell["backward"].get("status") != "ok":
            grouped.setdefault(f"backward: {cell['backward'].get('reason')}", []).append(where)
        if cell.get("note"):
            grouped.setdefault(f"note: {cell['note']}", []).append(where)
    return [f"  {name} [{_scope(where, dtypes, head_dims)}]: {reason}" for reason, where in grouped.items()]


def render_matrix(matrix: dict[str, Any] | None) -> str:
    """A compact backend x (dtype/head_dim) table, then each distinct reason once."""
    return "\n".join(part for part in render_matrix_parts(matrix) if part)


def render_matrix_parts(matrix: dict[str, Any] | None) -> tuple[str, str, str]:
    """(title, table, legend and reasons): prose a narrow screen may wrap, and the grid,
    which must not wrap (the TUI scrolls it sideways instead)."""
    if not matrix:
        return "capability matrix: NA (not probed)", "", ""
    dtypes, head_dims = matrix["dtypes"], matrix["head_dims"]
    by_backend: dict[str, list[dict[str, Any]]] = {}
    for cell in matrix["cells"]:
        by_backend.setdefault(cell["backend"], []).append(cell)
    header = ["backend", *[f"{d}/{h}" for d in dtypes for h in head_dims], "probe"]
    rows = []
    reasons: list[str] = []
    for name, info in matrix["backends"].items():
        cells = {(c["dtype"], c["head_dim"]): c for c in by_backend.get(name, [])}
        marks = [_cell_mark(cells[(d, h)]) if (d, h) in cells else NA for d in dtypes for h in head_dims]
        rows.append([name, *marks, fmt_seconds(info.get("seconds")) if info.get("cells_run") else "-"])
        if not info.get("available"):
            reasons.append(f"  {name}: not available: {info.get('reason')}")
        else:
            reasons.extend(_reason_lines(name, by_backend.get(name, []), dtypes, head_dims))
    shape = matrix.get("shape", {})
    title = (f"capability matrix (dtype/head_dim; each cell ran B={shape.get('batch')} H={shape.get('heads')} "
             f"S={shape.get('seq')} causal, {shape.get('pass')}"
             f"{'' if matrix.get('full') else '; quick mode'})")
    notes = [LEGEND]
    elsewhere = sorted({c["backend"] for c in matrix.get("cells", []) if c.get("shape")},
                       key=lambda n: list(by_backend).index(n) if n in by_backend else 0)
    if elsewhere:
        dims = next(c["shape"] for c in matrix["cells"] if c.get("shape"))
        notes.append(f"{', '.join(elsewhere)}: the quick cell ran forward at B={dims['batch']} H={dims['heads']} "
                     f"S={dims['seq']}, the \"fastest here\" shape, so one compile serves both")
    if reasons:
        notes += ["why:", *reasons]
    return title, render_rows(header, rows, right={len(header) - 1}), "\n".join(notes)


VARIANT_MARKS = {"native": "native", "mask": "mask", "no": "-"}


def render_variants(variants: dict[str, Any] | None) -> str:
    """Backend x variant: native, through a mask, or not at all (reasons listed once under it)."""
    if not variants or not variants.get("cells"):
        return "variants: NA (not probed)"
    names = variants["variants"]
    by_backend: dict[str, dict[str, dict[str, Any]]] = {}
    for cell in variants["cells"]:
        by_backend.setdefault(cell["backend"], {})[cell["variant"]] = cell
    rows = []
    reasons: dict[tuple[str, str], list[str]] = {}
    for backend, cells in by_backend.items():
        marks = []
        for name in names:
            cell = cells.get(name)
            if cell is None:
                marks.append(NA)
                continue
            mark = VARIANT_MARKS.get(cell["path"], cell["path"])
            if cell["status"] == "failed":
                mark = "FAIL"
            elif cell["status"] == "not_probed":
                mark += "?"
            marks.append(mark)
            if cell["status"] in ("unsupported", "failed"):
                reasons.setdefault((name, str(cell.get("reason"))), []).append(backend)
        rows.append([backend, *marks])
    shape = variants.get("shape", {})
    cases = ", ".join(f"{k} ({' '.join(f'{a}={b:g}' for a, b in v.items())})"
                      for k, v in (variants.get("cases") or {}).items())
    title = (f"variants (each ran B={shape.get('batch')} H={shape.get('heads')} S={shape.get('seq')} "
             f"D={shape.get('head_dim')} {shape.get('dtype')} causal forward, checked against fp64: {cases})")
    legend = ("native: the backend's own path; mask: through an attention mask (costs a Q x S mask, "
              "and for SDPA possibly a slower kernel); -: not at all; ?: not probed (compile-heavy, "
              "--full runs it); FAIL: ran but wrong")
    parts = [title, render_rows(["backend", *names], rows), legend]
    if reasons:
        parts.append("why not:")
        parts += [f"  {name} [{', '.join(who)}]: {why}" for (name, why), who in reasons.items()]
    return "\n".join(parts)


def render_fastest(fastest: dict[str, Any] | None) -> str:
    if not fastest:
        return "fastest here: NA (not probed)"
    rows = []
    for row in fastest["rows"]:
        if row["status"] != "ok":
            status = f"{row['status']}: {row.get('reason')}"
        elif row.get("noisy"):
            status = f"noisy: {row.get('noise_reason')}"
        else:
            status = "ok"
        rows.append([row["backend"], fmt_ms(row.get("median_ms")), fmt_ms(row.get("iqr_ms")),
                     fmt_ratio(row.get("speedup_vs_standard")), status])
    table = render_rows(["backend", "median", "IQR", "vs standard", "status"], rows, right={1, 2, 3})
    noisy = fastest.get("noisy_backends") or []
    if fastest.get("fastest"):
        verdict = f"fastest here: {fastest['fastest']}"
        if noisy:
            verdict += f" (of the steady timings; {', '.join(noisy)} too noisy to rank)"
    elif noisy:
        verdict = ("fastest here: NA (every timing was noisy: the host was busy or the kernels too short; "
                   "flashtui bench re-measures)")
    else:
        verdict = "fastest here: NA (nothing ran)"
    return f"{verdict}\n({fastest['label']})\n{table}"


def render_preview(preview: dict[str, Any]) -> str:
    """The torch-free first look (flashtui.client.environment.preview), a few lines."""
    packages = preview.get("packages") or {}
    tags = preview.get("wheel_tags") or {}
    nvml = preview.get("nvml") or {}

    def pkg(key: str, label: str) -> str:
        return f"{label} {packages.get(key) or 'absent'}"

    build = f"CUDA {tags['cuda']} build" if tags.get("cuda") else "no CUDA tag"
    lines = [
        f"installed: {pkg('torch', 'torch')} ({build}; wheel tags torch{_na(tags.get('torch'))} "
        f"{_na(tags.get('cp'))} {_na(tags.get('platform'))}), Python {_na(preview.get('python'))}",
        "  " + ", ".join(pkg(k, label) for k, label in (
            ("triton", "triton"), ("cudnn", "cuDNN wheel"), ("flash_attn", "flash-attn"),
            ("flash_attn_3", "FA3"), ("flash_attn_4", "flash-attn-4"), ("cutlass_dsl", "cutlass-dsl"),
            ("transformers", "transformers"))),
    ]
    if nvml.get("available"):
        gpus = ", ".join(f"{g.get('name')} ({g.get('uuid') or 'no UUID'})" for g in preview.get("gpus") or [])
        lines.append(f"GPU (NVML): {gpus or NA}; driver {_na(nvml.get('driver_version'))}")
    else:
        lines.append(f"GPU (NVML): unavailable: {nvml.get('reason')}")
    return "\n".join(lines)


def render_matrix_row(name: str, cells: list[dict[str, Any]], seconds: float | None = None) -> str:
    """One backend's finished row, for live output: 'standard  fp32 ok ok ok | fp16 - - -'."""
    by_dtype: dict[str, list[str]] = {}
    for cell in cells:
        by_dtype.setdefault(cell["dtype"], []).append(_cell_mark(cell))
    marks = " | ".join(f"{dtype} {' '.join(m)}" for dtype, m in by_dtype.items())
    took = f"  ({fmt_seconds(seconds)})" if seconds is not None else ""
    return f"  {name:<15} {marks}{took}"


def partial_matrix(cells: list[dict[str, Any]], backends: Iterable[str],
                   dtypes: Iterable[str] = ("fp32", "fp16", "bf16"),
                   head_dims: Iterable[int] = (64, 128, 256)) -> dict[str, Any]:
    """A matrix for render_matrix from the cells finished so far (others show NA)."""
    return {"dtypes": list(dtypes), "head_dims": list(head_dims), "cells": list(cells), "full": True,
            "shape": {"batch": 1, "heads": 2, "seq": 128, "pass": "probing…"},
            "backends": {name: {"available": True, "cells_run": 0} for name in backends}}


def render_cache_line(report: dict[str, Any], again: str = "--fresh") -> str | None:
    """'cached 3 min ago, --fresh probes again', or why it probed again; None without a cache.

    ``again``: what probes again where the line is shown (the TUI says ``r``)."""
    if report.get("cached"):
        age_s = report.get("cached_age_s") or 0.0
        age = f"{age_s / 60:.0f} min" if age_s >= 60 else f"{age_s:.0f} s"
        return f"cached {age} ago, {again} probes again"
    changes = (report.get("cache") or {}).get("changes")
    if changes:
        return f"probed again: the environment changed since the cached answer ({'; '.join(changes)})"
    return None


def render_advice(advice: list[str]) -> str:
    if not advice:
        return "advice: none, everything this GPU can run is installed"
    return "advice:\n" + "\n".join(f"  * {line}" for line in advice)


def render_report(report: dict[str, Any]) -> str:
    """The whole human report of ``flashtui doctor``."""
    sections = [
        "flashtui doctor",
        render_environment(report),
        render_matrix(report.get("matrix")),
        render_variants(report.get("variants")),
        render_fastest(report.get("fastest")),
        render_advice(report.get("advice") or []),
    ]
    if report.get("probe_seconds") is not None:
        sections.append(f"probe took {fmt_seconds(report['probe_seconds'])} "
                        f"(worker start {fmt_seconds(report.get('worker_ready_s'))})")
    workers = report.get("probe_workers") or []
    if len(workers) > 1:
        shares = "; ".join(", ".join(w["backends"]) or "-" for w in workers)
        sections.append(f"probed by {len(workers)} workers at once ({shares}): their first-use costs "
                        "overlap; the \"fastest here\" timings ran one worker at a time")
    cache_line = render_cache_line(report)
    if cache_line:
        sections.append(cache_line)
    return "\n\n".join(sections)


def render_capacity(result: dict[str, Any]) -> str:
    """The capacity table: longest sequence that fits, per backend and dtype."""
    spec = result.get("spec", {})
    kv = spec.get("kv_heads") or spec.get("heads")
    title = (f"longest sequence that fits, {result.get('pass')} pass, B={spec.get('batch')} "
             f"H={spec.get('heads')} KV={kv} D={spec.get('head_dim')} "
             f"{'causal' if spec.get('causal') else 'non-causal'} on {result.get('device', {}).get('name')} "
             f"(search {result.get('start_seq')}..{result.get('cap_seq')})")
    rows = []
    for row in result.get("rows", []):
        rows.append([row["backend"], row["dtype"], _na(row.get("max_seq_fit")), _na(row.get("first_oom_seq")),
                     _na(row.get("tries")), fmt_seconds(row.get("seconds")), _na(row.get("reason"))])
    table = render_rows(["backend", "dtype", "max seq", "first OOM", "tries", "time", "why it stops"],
                        rows, right={2, 3, 4, 5})
    return f"{title}\n{table}\n({result.get('method')})"


__all__ = ["SCHEMA", "CAPACITY_SCHEMA", "PROVENANCE_OF_ANSWER", "build_report", "client_advice",
           "render_report", "render_preview", "render_matrix_row", "render_matrix_parts", "partial_matrix", "render_cache_line",
           "render_matrix", "render_variants", "render_fastest", "render_advice", "render_environment",
           "render_capacity"]
