"""Plain-text results table for `flashtui bench` (no rich: pipes, logs and CI stay clean).

Every number comes from :mod:`flashtui.core.units`, and the text is ASCII (no ``·``,
``±`` or ``µ``), so the table survives a non-UTF-8 terminal, a log or a CI console.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from flashtui.core.results import Cell, memory_bound
from flashtui.core.session import Session
from flashtui.core.units import (
    NA, fmt_bytes, fmt_gbps, fmt_ms, fmt_pass, fmt_pct, fmt_ratio, fmt_sci, fmt_seconds, fmt_tflops,
)
from flashtui.core.variants import describe
from flashtui.reports.cells import warmup_label

# Between the parts of the provenance and spec lines (ASCII, see the module docstring).
SEPARATOR = " | "


def render_rows(header: Sequence[str], rows: Iterable[Sequence[str]], right: set[int] | None = None) -> str:
    rows = [list(map(str, r)) for r in rows]
    widths = [len(h) for h in header]
    for row in rows:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], len(value))
    right = right or set()

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(widths[i]) if i in right else v.ljust(widths[i])
                         for i, v in enumerate(values)).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    out.extend(line(r) for r in rows)
    return "\n".join(out)


def launch_bound(cell: Cell) -> bool:
    """The host, not the kernel, sets the loop time (see Cell.launch_bound)."""
    return cell.launch_bound


def _host(cell: Cell) -> str:
    return fmt_ms(cell.host_ms) + ("*" if launch_bound(cell) else "")


def _median(cell: Cell) -> str:
    """The loop median; ``~`` marks a noisy cell (its reason is printed under the table)."""
    return fmt_ms(cell.median_ms) + ("~" if cell.noisy else "")


def _status(cell: Cell) -> str:
    if cell.status == "ok":
        picked = cell.extra.get("sdpa_kernel") if cell.backend == "sdpa" else None
        return f"ok: ran {picked}" if picked else "ok"
    reason = cell.reason or ""
    return f"{cell.status.upper()}: {reason}" if reason else cell.status.upper()


def _parity_cols(cell: Cell) -> list[str]:
    p = cell.parity
    if p is None or p.rel_l2 is None:
        return [NA, NA, NA]
    return [fmt_sci(p.rel_l2), fmt_ratio(p.ratio_vs_standard), fmt_pass(p.passed)]


# "median" is what a Python loop sees (speedups use it); "kernel" is the kernels' own time
# (CUDA-graph replay or profiler), NA on CPU.
HEADER = ["backend", "seq", "median", "IQR", "kernel", "host", "FLOP/s", "%peak", "speedup",
          "peak mem", "theory", "rel_l2", "vs std", "parity", "status"]
# Model modes: the time is per forward (prefill) or per generated token (decode), tokens/s beside.
MODEL_HEADER = {"prefill": ["backend", "seq", "ms/forward", "IQR", "host", "tokens/s", "speedup",
                            "peak mem", "theory", "rel_l2", "vs std", "parity", "status"],
                "decode": ["backend", "seq", "ms/token", "IQR", "host", "tokens/s", "speedup",
                           "peak mem", "theory", "rel_l2", "vs std", "parity", "status"]}


# Beside FLOP/s when a cell is memory-bound (decode): bandwidth is its yardstick.
BANDWIDTH_HEADER = ["GB/s", "%HBM"]


def header_for(mode: str, bandwidth: bool = False) -> list[str]:
    """The table's columns: per model mode, or kernel mode with GB/s and %HBM when judged on them."""
    if mode in MODEL_HEADER:
        return list(MODEL_HEADER[mode])
    at = HEADER.index("%peak") + 1
    return HEADER[:at] + BANDWIDTH_HEADER + HEADER[at:] if bandwidth else list(HEADER)


def _judged(text: str, cell: Cell) -> str:
    """Mark the bandwidth of a memory-bound cell with '<': the figure it is judged on."""
    return text + ("<" if memory_bound(cell) else "")


def cell_row(cell: Cell, mode: str = "kernel", bandwidth: bool = False) -> list[str]:
    measured = cell.status == "ok" or cell.median_ms is not None
    if mode in MODEL_HEADER:
        tokens_s = cell.extra.get("tokens_per_s")
        row = [cell.backend, str(cell.seq),
               _median(cell) if measured else "-",
               fmt_ms(cell.iqr_ms) if measured else "-",
               _host(cell) if measured else "-",
               (f"{tokens_s:,.0f}" if tokens_s else NA) if measured else "-",
               fmt_ratio(cell.speedup_vs_standard) if measured else "-",
               fmt_bytes(cell.peak_alloc_bytes) if measured else "-",
               fmt_bytes(cell.theory_bytes)]
    else:
        row = [
            cell.backend, str(cell.seq),
            _median(cell) if measured else "-",
            fmt_ms(cell.iqr_ms) if measured else "-",
            fmt_ms(cell.device_ms) if measured else "-",
            _host(cell) if measured else "-",
            fmt_tflops(cell.tflops) if measured else "-",
            fmt_pct(cell.pct_peak) if measured else "-",
        ]
        if bandwidth:
            row += [_judged(fmt_gbps(cell.gbps), cell) if measured else "-",
                    fmt_pct(cell.pct_bw_peak) if measured else "-"]
        row += [
            fmt_ratio(cell.speedup_vs_standard) if measured else "-",
            fmt_bytes(cell.peak_alloc_bytes) if measured else "-",
            fmt_bytes(cell.theory_bytes),
        ]
    row += _parity_cols(cell) if measured else ["-", "-", "-"]
    row.append(_status(cell))
    return row


def render_session(session: Session) -> str:
    parts = [provenance_line(session.provenance, session.worker)]
    spec = session.spec
    parts.append(spec_line(spec, session.cells))
    mode = spec.get("mode", "kernel")
    for dtype in dict.fromkeys(c.dtype for c in session.cells):
        cells = [c for c in session.cells if c.dtype == dtype]
        cells.sort(key=lambda c: (c.seq, c.backend != "standard"))
        bandwidth = any(memory_bound(c) for c in cells)
        parts.append(f"\n{dtype}:")
        columns = header_for(mode, bandwidth)
        parts.append(render_rows(columns, (cell_row(c, mode, bandwidth) for c in cells),
                                 right=set(range(1, len(columns) - 2))))
    on_cpu = spec.get("device") == "cpu"
    parts.append("\nspeedup = standard's median / this median (the loop time a Python caller sees)"
                 + ("; kernel = the kernels' own time (CUDA-graph replay)." if mode == "kernel" and not on_cpu
                    else "."))
    if on_cpu and mode == "kernel":
        parts.append("kernel, host, peak mem, %peak: NA on the CPU (no CUDA graph to replay, no separate "
                     "launch cost, no CUDA allocator to read peaks from, no known FLOP/s peak for a CPU); "
                     "theory is the bytes the algorithm needs.")
    if any(memory_bound(c) for c in session.cells):
        parts.append("< memory-bound (e.g. one decode step reading its KV cache): judge it on GB/s, "
                     "the least HBM traffic (q, k, v read once, o written once) over the median, "
                     "and %HBM of the GPU's bandwidth peak, not on FLOP/s.")
    notes = variant_notes(session)
    if notes:
        parts.append("variant:")
        parts += [f"  {line}" for line in notes]
    if any(launch_bound(c) for c in session.cells):
        parts.append("* launch-bound: the host's launch cost, not the kernel, sets the loop time "
                     "(host near the median, or kernel well below it); batch more work per call or "
                     "capture a CUDA graph.")
    noisy = [c for c in session.cells if c.status == "ok" and c.noisy]
    if noisy:
        parts.append(f"~ noisy ({len(noisy)} cells, left out of findings): "
                     + "; ".join(f"{c.backend} {c.seq} {c.dtype}: {c.noise_reason}" for c in noisy[:4])
                     + (" ..." if len(noisy) > 4 else ""))
    profiled = sum(1 for c in session.cells if c.extra.get("timed_under_pyspy_record"))
    if profiled:
        parts.append(f"\n{profiled} of {len(session.cells)} cells were timed under py-spy record: its "
                     "sampling pauses are in their timings; compare against a run without --profile.")
    if session.backends_unavailable:
        parts.append("\nnot available here:")
        for name, reason in session.backends_unavailable.items():
            parts.append(f"  {name}: {reason}")
    return "\n".join(parts)


def variant_notes(session: Session) -> list[str]:
    """How each backend ran the variant (native / through a mask / why not), once each."""
    lines: dict[str, None] = {}
    for cell in session.cells:
        info = cell.extra.get("variant") or {}
        if info.get("path"):
            text = f"{cell.backend}: {info['path']}: {info.get('how')}"
            if info.get("cost"):
                text += f" ({info['cost']})"
            lines[text] = None
        for note in info.get("notes") or []:
            lines[f"note: {note}"] = None
    return list(lines)


def provenance_line(prov: dict[str, Any], worker: dict[str, Any] | None = None) -> str:
    bits = [str(prov.get("device_name", "unknown device"))]
    if prov.get("compute_capability"):
        bits.append(f"cc {prov['compute_capability']}")
    if prov.get("driver"):
        bits.append(f"driver {prov['driver']}")
    if prov.get("cuda_runtime"):
        bits.append(f"CUDA {prov['cuda_runtime']}")
    bits.append(f"torch {prov.get('torch', NA)}")
    if prov.get("cudnn"):
        bits.append(f"cuDNN {prov['cudnn']}")
    for key, label in (("flash_attn", "flash-attn"), ("flash_attn_3", "FA3"), ("flash_attn_4", "flash-attn-4"),
                       ("transformers", "transformers")):
        if prov.get(key):
            bits.append(f"{label} {prov[key]}")
    if worker and worker.get("ready_s") is not None:
        bits.append(f"worker ready in {fmt_seconds(worker['ready_s'])}")
    return SEPARATOR.join(bits)


def spec_line(spec: dict[str, Any], cells: Iterable[Cell] = ()) -> str:
    if spec.get("mode", "kernel") == "kernel":
        kv = spec.get("kv_heads")
        heads = f"H={spec.get('heads')}" + (f"/KV={kv}" if kv else "")
        what = f"kernel B={spec.get('batch')} {heads} D={spec.get('head_dim')}"
        if describe(spec) != "dense":
            what += f" [{describe(spec)}]"
    else:
        what = f"{spec.get('mode')} model={spec.get('model')} B={spec.get('batch')}"
        weights = next((c.extra.get("weights") for c in cells if c.extra.get("weights")), None)
        if weights:
            what += f" ({weights} weights)"
        if spec.get("pad") is not None:
            what += f" [pad {float(spec['pad']):g}]"
    flags = ["causal" if spec.get("causal") else "non-causal",
             "fwd+bwd" if spec.get("backward") else "fwd",
             f"device={spec.get('device')}", f"reps={spec.get('reps')}",
             warmup_label(spec, cells) or f"warm-up {NA}",
             "L2 flushed per call" if spec.get("cold_l2") else "L2 warm"]
    return SEPARATOR.join([what, *flags])
