"""Findings: short statements computed from a session's cells, never written by hand.

What to use at the user's shapes (the fastest backend that passes parity, its speedup
and memory saving over standard and over PyTorch's own pick, and the line of code that
gets it), who is fastest where, who ran out of memory or is unsupported, whether every
backend checked passes parity, and how much memory flash saves. Shared by the Markdown
and HTML reports, the CLI summary and the TUI.

Timing findings use trustworthy cells only (measured, not ``noisy``): a cell whose
spread or host conditions made its number doubtful is listed as such, never cited.
"""

from __future__ import annotations

from flashtui.core.results import PARITY_RATIO_LIMIT, Cell, memory_bound
from flashtui.core.session import Session
from flashtui.core.units import fmt_bytes, fmt_gbps, fmt_ms, fmt_pct, fmt_ratio
from flashtui.reports.cells import STATUS_LABELS, backend_order, one_line, ordered_backends, ordered_cells, ordered_dtypes


def _describe_seqs(chosen: list[int], all_seqs: list[int]) -> str:
    """``at seq >= 2048``, ``at seq <= 512``, ``at every seq``, ``at seq 1024, 4096``."""
    chosen = sorted(chosen)
    if not chosen:
        return ""
    if len(all_seqs) > 1 and chosen == all_seqs:
        return f"at every seq {all_seqs[0]}–{all_seqs[-1]}"
    if len(chosen) == 1:
        return f"at seq {chosen[0]}"
    start = all_seqs.index(chosen[0])
    contiguous = all_seqs[start:start + len(chosen)] == chosen
    if contiguous and chosen[-1] == all_seqs[-1]:
        return f"at seq >= {chosen[0]}"
    if contiguous and chosen[0] == all_seqs[0]:
        return f"at seq <= {chosen[-1]}"
    if contiguous:
        return f"at seq {chosen[0]}–{chosen[-1]}"
    return "at seq " + ", ".join(str(s) for s in chosen)


def _speedup_text(values: list[float]) -> str:
    low, high = min(values), max(values)
    if fmt_ratio(low) == fmt_ratio(high):
        return f"{fmt_ratio(high)} over standard"
    return f"{fmt_ratio(low).rstrip('x')}–{fmt_ratio(high)} over standard"


# How to get each backend in user code: the call, and transformers' attn_implementation.
HOW_TO = {
    "standard": 'your own matmul-softmax-matmul (transformers: attn_implementation="eager")',
    "sdpa": 'F.scaled_dot_product_attention as it is (transformers: attn_implementation="sdpa")',
    "sdpa-math": 'with sdpa_kernel(SDPBackend.MATH): F.scaled_dot_product_attention(...)',
    "sdpa-flash": 'with sdpa_kernel(SDPBackend.FLASH_ATTENTION): F.scaled_dot_product_attention(...) '
                  '(transformers: attn_implementation="sdpa" inside that context)',
    "sdpa-efficient": 'with sdpa_kernel(SDPBackend.EFFICIENT_ATTENTION): F.scaled_dot_product_attention(...) '
                      '(transformers: attn_implementation="sdpa" inside that context)',
    "sdpa-cudnn": 'with sdpa_kernel(SDPBackend.CUDNN_ATTENTION): F.scaled_dot_product_attention(...) '
                  '(transformers: attn_implementation="sdpa" inside that context)',
    "flex": 'torch.compile(flex_attention)(q, k, v, block_mask=...) (transformers: attn_implementation="flex_attention")',
    "fa2": 'flash_attn.flash_attn_func(q, k, v, causal=...) (transformers: attn_implementation="flash_attention_2")',
    "fa3": 'flash_attn_interface.flash_attn_func(q, k, v, causal=...) (transformers: attn_implementation="flash_attention_3")',
    "fa4": 'flash_attn.cute.flash_attn_func(q, k, v, causal=...) (pip install flash-attn-4)',
}


def _usable(cell: Cell) -> bool:
    """Trustworthy timing and no parity failure: fit to recommend."""
    return cell.trustworthy and not (cell.parity is not None and cell.parity.passed is False)


def recommendation(cells: list[Cell], tag: str = "") -> list[str]:
    """At the largest sequence measured cleanly: the fastest backend that passes parity,
    against standard and against PyTorch's own pick (``sdpa``), and how to get it."""
    usable = [c for c in cells if _usable(c)]
    if not usable:
        return []
    seq = max(c.seq for c in usable)
    here = [c for c in usable if c.seq == seq]
    best = min(here, key=lambda c: (c.median_ms, backend_order(c.backend)))
    parts = [f"use {best.backend} at seq {seq}{tag}: {fmt_ms(best.median_ms)}"]
    std = next((c for c in here if c.backend == "standard"), None)
    std_oom = any(c.backend == "standard" and c.seq == seq and c.status == "oom" for c in cells)
    if std_oom:
        parts.append("standard runs out of memory here")
    if std is not None and best is not std:
        mem = ""
        if std.peak_alloc_bytes and best.peak_alloc_bytes:
            mem = f", {fmt_ratio(std.peak_alloc_bytes / best.peak_alloc_bytes)} less memory"
        parts.append(f"{fmt_ratio(std.median_ms / best.median_ms)} faster than standard{mem}")
    pick = next((c for c in here if c.backend == "sdpa"), None)
    if pick is not None and best is not pick:
        kernel = pick.extra.get("sdpa_kernel")
        parts.append(f"{fmt_ratio(pick.median_ms / best.median_ms)} over PyTorch's own pick"
                     + (f" (sdpa ran {kernel})" if kernel else ""))
    elif pick is not None:
        kernel = pick.extra.get("sdpa_kernel")
        parts.append("PyTorch's own pick is already the fastest" + (f" ({kernel})" if kernel else ""))
    how = HOW_TO.get(best.backend)
    return [", ".join(parts) + (f"; in code: {how}" if how else "")]


def _noisy_findings(cells: list[Cell], tag: str) -> list[str]:
    noisy = [c for c in ordered_cells(cells) if c.status == "ok" and c.noisy]
    if not noisy:
        return []
    first = noisy[0]
    names = ", ".join(f"{c.backend} seq={c.seq}" for c in noisy[:6]) + (" ..." if len(noisy) > 6 else "")
    return [f"{len(noisy)} cell(s) noisy, left out of these findings{tag}: {names} "
            f"({first.noise_reason or 'unstable timing'}); re-run on a quiet machine"]


def _launch_bound_findings(cells: list[Cell], tag: str) -> list[str]:
    bound = [c for c in ordered_cells(cells) if c.status == "ok" and c.launch_bound and c.device_ms]
    if not bound:
        return []
    c = bound[0]
    more = f" (+{len(bound) - 1} more)" if len(bound) > 1 else ""
    return [f"{c.backend} at seq {c.seq} is launch-bound{tag}: a Python loop sees {fmt_ms(c.median_ms)}, "
            f"its kernels take {fmt_ms(c.device_ms)} ({c.device_ms_method}){more}; batch more work per "
            "call or capture a CUDA graph"]


def _fastest_findings(cells: list[Cell], tag: str) -> list[str]:
    seqs = sorted({c.seq for c in cells})
    winners: dict[int, Cell] = {}
    for seq in seqs:
        ok = [c for c in cells if c.seq == seq and _usable(c)]
        if ok:
            winners[seq] = min(ok, key=lambda c: (c.median_ms, backend_order(c.backend)))
    measured = sorted(winners)
    runs: list[tuple[str, list[int]]] = []
    for seq in measured:
        name = winners[seq].backend
        if runs and runs[-1][0] == name:
            runs[-1][1].append(seq)
        else:
            runs.append((name, [seq]))
    out = []
    for name, run in runs:
        where = _describe_seqs(run, measured)
        if name == "standard":
            out.append(f"standard fastest {where}{tag}")
            continue
        speedups = [winners[s].speedup_vs_standard for s in run
                    if winners[s].speedup_vs_standard is not None]
        detail = _speedup_text(speedups) if speedups else "standard not measured there"
        bandwidth = _bandwidth_text([winners[s] for s in run])
        out.append(f"{name} fastest {where} ({detail}{bandwidth}){tag}")
    return out


def _bandwidth_text(cells: list[Cell]) -> str:
    """``"; judged on bandwidth (1.0 FLOP/byte, memory-bound): 4100 GB/s, 85% of HBM peak"``
    for winners whose shape is memory-bound by the roofline, else ``""``. The FLOPs per byte
    say why (below the GPU's ridge point); the % of peak says how close the kernel got,
    which for a short prefill can be far (it is then launch- or latency-bound instead)."""
    bound = [c for c in cells if memory_bound(c) and c.gbps is not None]
    if not bound:
        return ""
    best = max(bound, key=lambda c: c.gbps)
    pct = f", {fmt_pct(best.pct_bw_peak)} of HBM peak" if best.pct_bw_peak is not None else ""
    intensity = (f"{best.flops / best.bytes:.3g} FLOP/byte, " if best.flops and best.bytes else "")
    return f"; judged on bandwidth ({intensity}memory-bound): {fmt_gbps(best.gbps)}{pct}"


def _status_findings(cells: list[Cell], tag: str) -> list[str]:
    seqs = sorted({c.seq for c in cells})
    out = []
    for name in ordered_backends(cells):
        for status in ("oom", "unsupported", "failed"):
            hit = [c for c in cells if c.backend == name and c.status == status]
            if not hit:
                continue
            where = _describe_seqs([c.seq for c in hit], seqs)
            text = f"{name} {STATUS_LABELS[status]} {where}{tag}"
            reasons = sorted({one_line(c.reason) for c in hit if c.reason})
            if status != "oom" and reasons:
                text += f": {reasons[0]}" + (f" (+{len(reasons) - 1} other reasons)"
                                             if len(reasons) > 1 else "")
            out.append(text)
    return out


def _parity_findings(cells: list[Cell], tag: str) -> list[str]:
    checked = [c for c in cells if c.backend != "standard" and c.parity is not None
               and c.parity.passed is not None]
    if not checked:
        return []
    limit = f"{PARITY_RATIO_LIMIT:g}x"
    seqs = sorted({c.seq for c in cells})
    backends = ordered_backends(checked)
    failing = [name for name in backends
               if any(c.parity.passed is False for c in checked if c.backend == name)]
    out = []
    for name in failing:
        bad = [c for c in checked if c.backend == name and c.parity.passed is False]
        ratios = [c.parity.ratio_vs_standard for c in bad if c.parity.ratio_vs_standard is not None]
        worst = f"worst ratio {fmt_ratio(max(ratios))} > {limit}" if ratios else "no ratio recorded"
        out.append(f"{name} fails parity {_describe_seqs([c.seq for c in bad], seqs)} ({worst}){tag}")
    passing = [name for name in backends if name not in failing]
    ratios = [(c.parity.ratio_vs_standard, c) for c in checked
              if c.backend in passing and c.parity.ratio_vs_standard is not None]
    worst_text = ""
    if ratios:
        worst_ratio, worst_cell = max(ratios, key=lambda item: item[0])
        who = f", {worst_cell.backend}" if len(passing) > 1 else ""
        worst_text = f"; worst {fmt_ratio(worst_ratio)}{who} at seq {worst_cell.seq}"
    if len(passing) == 1:
        out.append(f"{passing[0]} passes parity (ratio <= {limit} vs standard's own error"
                   f"{worst_text}){tag}")
    elif passing and not failing:
        out.append(f"all {len(passing)} backends checked pass parity (ratio <= {limit} vs "
                   f"standard's own error{worst_text}){tag}")
    elif passing:
        out.append(f"{', '.join(passing)} pass parity (ratio <= {limit} vs standard's own "
                   f"error{worst_text}){tag}")
    return out


def _memory_findings(cells: list[Cell], tag: str) -> list[str]:
    standard = {c.seq: c for c in cells if c.backend == "standard" and c.status == "ok"
                and c.peak_alloc_bytes}
    for seq in sorted(standard, reverse=True):
        others = [c for c in cells if c.seq == seq and c.backend != "standard"
                  and c.status == "ok" and c.peak_alloc_bytes is not None]
        if not others:
            continue
        best = min(others, key=lambda c: (c.peak_alloc_bytes, backend_order(c.backend)))
        base = standard[seq].peak_alloc_bytes
        if best.peak_alloc_bytes and best.peak_alloc_bytes < base:
            saving = f"{fmt_ratio(base / best.peak_alloc_bytes)} less"
        elif best.peak_alloc_bytes == base:
            saving = "the same"
        else:
            saving = "more than standard"
        return [f"at seq {seq}, {best.backend} peaks at {fmt_bytes(best.peak_alloc_bytes)} vs "
                f"standard's {fmt_bytes(base)} ({saving}){tag}"]
    return []


def findings(session: Session) -> list[str]:
    """Short statements computed from the cells, most useful first, per dtype."""
    dtypes = ordered_dtypes(session)
    out: list[str] = []
    weights = {c.extra.get("weights") for c in session.cells if c.extra.get("weights")}
    if "random" in weights:
        out.append(f"model {session.spec.get('model')} ran with random weights (a built-in config): "
                   "times and memory are the real model's, parity compares kernels, not model quality")
    for dtype in dtypes:
        tag = f" [{dtype}]" if len(dtypes) > 1 else ""
        cells = [c for c in session.cells if c.dtype == dtype]
        out += recommendation(cells, tag)
        out += _fastest_findings(cells, tag)
        out += _launch_bound_findings(cells, tag)
        out += _noisy_findings(cells, tag)
        out += _memory_findings(cells, tag)
        out += _status_findings(cells, tag)
        out += _parity_findings(cells, tag)
    profiled = [c for c in ordered_cells(session.cells) if c.extra.get("timed_under_pyspy_record")]
    if profiled:
        out.append(f"{len(profiled)} cell(s) timed while py-spy record sampled the worker (its "
                   "pauses are in their timings): "
                   + ", ".join(f"{c.backend} seq={c.seq} {c.dtype}" for c in profiled))
    for name, reason in sorted(session.backends_unavailable.items(),
                               key=lambda item: backend_order(item[0])):
        out.append(f"{name} unavailable on this worker: {one_line(reason)}")
    if not session.cells:
        out.append("no cells measured")
    return out
