"""The doctor's answer from several workers: rank the "fastest here" rows, join probes.

Standard library only (core). The doctor's parallel probe (flashtui.client.doctor_parallel)
gives each slow backend a worker of its own, so their first-use costs (cuDNN's load, flex's and
fa4's compiles) overlap instead of adding up; each worker answers for its own backends,
then times them for "fastest here" one worker at a time. ``merge_probes`` joins those
answers into the one result a single worker would have given: matrix cells and variant
rows in registry order, each backend's row, advice without repeats, and the fastest-here
rows ranked again over all of them (``rank_fastest``, the engine's own ranking).
"""

from __future__ import annotations

from typing import Any


def rank_fastest(rows: list[dict[str, Any]]) -> tuple[str | None, list[str]]:
    """Fill each row's speedup over standard; (the fastest steady backend, the noisy ones).

    Only a steady timing may be named fastest: a noisy one ranks the host, not the kernel.
    """
    standard = next((r["median_ms"] for r in rows if r["backend"] == "standard" and r.get("median_ms")), None)
    for row in rows:
        row["speedup_vs_standard"] = standard / row["median_ms"] if standard and row.get("median_ms") else None
    steady = [r for r in rows if r.get("median_ms") is not None and not r.get("noisy")]
    fastest = min(steady, key=lambda r: r["median_ms"])["backend"] if steady else None
    return fastest, [r["backend"] for r in rows if r.get("noisy")]


def cpu_line(cells: list[dict[str, Any]], order: list[str], why_no_gpu: str) -> str:
    """The doctor's first CPU advice line: which backends ran here, which need a GPU, why none."""
    ran = {c["backend"] for c in cells if c["status"] == "ok"}
    cpu_ok = [n for n in order if n in ran] or ["standard", "sdpa-math", "sdpa-flash"]
    gpu_only = [n for n in order if n not in cpu_ok]
    return (f"On CPU: {', '.join(cpu_ok)} run here (PyTorch's CPU kernels); "
            f"{', '.join(gpu_only)} need a CUDA GPU, and there is none here: {why_no_gpu}.")


def _in_order(items: list[dict[str, Any]], order: list[str]) -> list[dict[str, Any]]:
    rank = {name: i for i, name in enumerate(order)}
    return sorted(items, key=lambda item: rank.get(item["backend"], len(rank)))  # stable within a backend


def merge_probes(parts: list[dict[str, Any]], order: list[str], fastest_parts: list[dict[str, Any] | None],
                 seconds: float, workers: list[dict[str, Any]]) -> dict[str, Any]:
    """One probe result from ``parts`` (each worker's ProbeFinished result, the first the
    main worker's), ``fastest_parts`` (each worker's only_fastest answer, or None) and the
    registry ``order``. ``workers`` says who probed what (kept in the result)."""
    main = parts[0]
    matrices = [p["matrix"] for p in parts]
    backends: dict[str, Any] = {}
    for matrix in matrices:
        backends.update(matrix["backends"])
    matrix = {**matrices[0],
              "backends": {name: backends[name] for name in order if name in backends},
              "cells": _in_order([c for m in matrices for c in m["cells"]], order),
              "poisoned": next((m["poisoned"] for m in matrices if m.get("poisoned")), None)}
    variant_parts = [p["variants"] for p in parts if p.get("variants")]
    variants = None
    if variant_parts:
        variants = {**variant_parts[0], "cells": _in_order([c for v in variant_parts for c in v["cells"]], order)}
    fastest = None
    answered = [f for f in fastest_parts if f]
    if answered:
        rows = _in_order([r for f in answered for r in f["rows"]], order)
        # Each backend's untimed first call at this shape (its compile), paid in its own
        # worker during the parallel phase: seconds that are in no row's timing.
        primed = {name: s for part in parts for name, s in (part.get("primed_s") or {}).items()}
        rows = [{**r, "first_call_s": primed[r["backend"]]} if r["backend"] in primed else r for r in rows]
        best, noisy = rank_fastest(rows)
        fastest = {**answered[0], "rows": rows, "fastest": best, "noisy_backends": noisy}
    advice: list[str] = []
    for part in parts:
        advice.extend(line for line in part.get("advice") or [] if line not in advice)
    if main.get("no_gpu_reason") is not None:  # the CPU line speaks of every worker's cells
        advice = [cpu_line(matrix["cells"], order, main["no_gpu_reason"]),
                  *(line for line in advice if not line.startswith("On CPU: "))]
    return {**main, "matrix": matrix, "variants": variants, "fastest": fastest, "advice": advice,
            "seconds": round(seconds, 3), "workers": workers}


__all__ = ["cpu_line", "merge_probes", "rank_fastest"]
