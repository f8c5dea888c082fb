"""`flashtui doctor`: what this box can run, measured, and what to install.

* ``flashtui doctor``: environment (GPU, driver, CUDA, torch, cuDNN, flash-attn builds,
  NVML, py-spy), the capability matrix (tiny kernels really run in the worker), a short
  "fastest here" probe and advice. ``--json`` prints one object (schema flashtui.doctor v1).
* ``flashtui doctor --capacity``: the longest sequence each backend fits for a shape.

Quick answers: what needs no torch (installed packages, NVML's driver and GPUs, wheel
tags) prints at once, then each matrix row as its cells finish (the slow backends last);
the answer is cached under the cache dir ($FLASHTUI_CACHE_DIR) with a fingerprint of the
environment (flashtui.client.environment) and reused, with no worker at all, while the
fingerprint is unchanged (``cached: true`` and ``cached_age_s`` in --json). ``--fresh``
probes again.

``--device cpu`` forces the CPU path on a GPU box: for the probe the worker starts with
CUDA_VISIBLE_DEVICES="" (torch then sees no GPU); for capacity the spec says cpu.
Exit 0 when the report was produced (cells that fail are findings in the report),
2 for bad input, 3 when the worker could not run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from typing import Any

from flashtui.errors import UsageError
from flashtui.client.doctor_cache import DoctorCache, cached_provenance, probe_options
from flashtui.client.worker_client import WorkerClient
from flashtui.core.protocol import (
    Capacity, CapacityFinished, Probe, ProbeCellFinished, ProbeFinished, Progress, WorkerReady,
)
from flashtui.reports.doctor import (CAPACITY_SCHEMA, build_report, render_capacity, render_matrix_row,
                                     render_preview, render_report)
from flashtui.core.spec import SpecError, SweepSpec, parse_backends, parse_dtypes
from flashtui.client import doctor_parallel
from flashtui.commands.bench import _arg_type, _positive

PROBE_TIMEOUT_S = 900.0
CAPACITY_TIMEOUT_S = 3600.0
FORCED_CPU_NOTE = ("forced onto the CPU by --device cpu: the worker ran with CUDA_VISIBLE_DEVICES='' "
                   "so no GPU was used")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "doctor", help="what this GPU + torch + flash-attn can run, and why not",
        description="Probe every attention backend by running tiny kernels, time a typical "
                    "shape, and say what to install. --capacity finds the longest sequence "
                    "each backend fits.",
    )
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--device", choices=("cuda", "cpu"), help="cpu: ignore the GPU (default: cuda if present)")
    p.add_argument("--full", action="store_true",
                   help="probe every cell of compile-heavy backends (flex, fa4) too: slower")
    p.add_argument("--no-fastest", dest="fastest", action="store_false",
                   help="skip the short timed probe")
    p.add_argument("--quiet", action="store_true", help="no progress note on stderr")
    p.add_argument("--serial", action="store_true",
                   help="probe in one worker (on a GPU the slow backends - cuDNN, flex, fa4 - "
                        "otherwise each probe in a worker of their own, at once)")
    p.add_argument("--fresh", action="store_true",
                   help="probe again even when the cached answer's environment is unchanged")
    cap = p.add_argument_group("capacity (with --capacity)")
    cap.add_argument("--capacity", action="store_true",
                     help="find the longest sequence each backend fits (doubling, then bisection)")
    cap.add_argument("--batch", type=_positive("batch"))
    cap.add_argument("--heads", type=_positive("heads"))
    cap.add_argument("--kv-heads", type=_positive("kv-heads"), help="fewer than --heads for GQA/MQA")
    cap.add_argument("--head-dim", type=_positive("head-dim"))
    cap.add_argument("--dtype", type=_arg_type(parse_dtypes, "dtype"), help="fp32, fp16, bf16 (comma list)")
    cap.add_argument("--backends", type=_arg_type(parse_backends, "backends"),
                     help="comma list (default: every available one)")
    cap.add_argument("--start-seq", type=_positive("start-seq"), help="where doubling starts (default 1024)")
    cap.add_argument("--max-seq", type=_positive("max-seq"),
                     help="search cap (default 1048576 on CUDA, 8192 on CPU)")
    cap.add_argument("--no-causal", dest="causal", action="store_false", default=True)
    cap.add_argument("--backward", action="store_true", help="each try runs forward+backward")
    p.set_defaults(func=run)


_CAPACITY_ONLY = ("batch", "heads", "kv_heads", "head_dim", "dtype", "backends", "start_seq", "max_seq",
                  "backward")


def capacity_spec(args: argparse.Namespace, device: str) -> SweepSpec:
    """The SweepSpec the Capacity request carries: seqs = (start,) or (start, cap)."""
    start = args.start_seq or 1024
    if args.start_seq is None and args.max_seq is not None and args.max_seq <= start:
        start = max(64, args.max_seq // 2)
    if args.max_seq is not None and args.max_seq <= start:
        raise UsageError(f"--max-seq {args.max_seq} must be greater than the start sequence {start}")
    seqs = (start, args.max_seq) if args.max_seq is not None else (start,)
    default_dtype = ("bf16",) if device == "cuda" else ("fp32",)
    return SweepSpec(
        device=device, seqs=seqs, dtypes=args.dtype or default_dtype, backends=args.backends,
        batch=args.batch or 1, heads=args.heads or 16, kv_heads=args.kv_heads,
        head_dim=args.head_dim or 128, causal=args.causal, backward=args.backward, parity=False,
    )


def _pyspy_state() -> dict[str, Any]:
    from flashtui.monitor.pyspy import INSTALL_HINT, find_pyspy

    path = find_pyspy()
    return {"available": path is not None, "path": path, "reason": None if path else INSTALL_HINT}


def _note(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    if not args.capacity:
        given = [f"--{name.replace('_', '-')}" for name in _CAPACITY_ONLY
                 if getattr(args, name) not in (None, False)]
        if given or not args.causal:
            raise UsageError(f"{', '.join(given or ['--no-causal'])}: only used with --capacity")
        return _run_probe(args)
    capacity_spec(args, "cpu")  # bad flags fail now, not after the worker's start-up
    return _run_capacity(args)


def _check_device(args: argparse.Namespace, prov: dict[str, Any]) -> None:
    """--device cuda on a machine without CUDA: one line (from a live or a cached WorkerReady)."""
    if args.device == "cuda" and prov.get("device_kind") != "cuda":
        raise SpecError(f"--device cuda but {prov.get('cuda_unavailable_reason') or 'no CUDA device'}; "
                        "use --device cpu")


class LiveBlock:
    """The lines shown while the answer fills in (the preview, each matrix row, notes).

    On a terminal they go to stdout and are erased (cursor up, clear to the end) just
    before the full report is written, so the screen ends with one matrix, not two.
    Elsewhere (a pipe, a file, ``--json``, TERM=dumb) they go to stderr unless --quiet,
    and stdout carries the report alone.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.quiet = bool(args.quiet)
        self.on_terminal = (not args.json and sys.stdout.isatty()
                            and os.environ.get("TERM", "") not in ("", "dumb"))
        self.rows_written = 0

    def line(self, text: str) -> None:
        if self.on_terminal:
            columns = max(1, shutil.get_terminal_size().columns)
            self.rows_written += sum(max(1, -(-len(part) // columns)) for part in text.split("\n"))
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
        elif not self.quiet:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()

    def erase(self) -> None:
        if self.on_terminal and self.rows_written:
            sys.stdout.write(f"\x1b[{self.rows_written}F\x1b[J")
            sys.stdout.flush()
        self.rows_written = 0


def _emit(args: argparse.Namespace, report: dict[str, Any]) -> int:
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        sys.stdout.write(render_report(report) + "\n")
    sys.stdout.flush()
    return 0


def _run_probe(args: argparse.Namespace) -> int:
    env = None
    notes = []
    if args.device == "cpu":
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
        notes.append(FORCED_CPU_NOTE)
    if args.full:
        env = {**(env or os.environ), "FLASHTUI_PROBE_FULL": "1"}
    # What needs no torch first: it decides whether the cached answer still holds.
    doctor_cache = DoctorCache(probe_options(args.device, args.full, args.fastest))
    lookup = doctor_cache.lookup(fresh=args.fresh)
    env_preview, path = doctor_cache.env_preview or {}, lookup.path
    if lookup.entry is not None:
        entry = lookup.entry
        _check_device(args, entry["ready"].get("provenance") or {})
        return _emit(args, build_report(entry["ready"], entry["probe"], env_preview["nvml"],
                                        _pyspy_state(), notes, cached_provenance(lookup)))

    groups = doctor_parallel.helper_groups(env_preview, args.device, args.serial)
    shares = [doctor_parallel.Share(WorkerClient(env=env), None)]
    shares += [doctor_parallel.Share(WorkerClient(env=env), group) for group in groups]
    started_shares = list(shares)  # every client, closed at the end (a helper that failed too)
    live = LiveBlock(args)
    lock = threading.Lock()  # several workers report at once
    try:
        starter = threading.Thread(target=doctor_parallel.start_all, args=(shares,), daemon=True,
                                   name="flashtui-doctor-start")
        starter.start()
        live.line(render_preview(env_preview))
        live.line("flashtui doctor: starting the worker (importing torch)..." if not groups else
                  f"flashtui doctor: starting {len(shares)} workers at once (importing torch); "
                  f"{', '.join('+'.join(g) for g in groups)} each probe in their own, so their "
                  "first-use costs overlap...")
        starter.join()
        main = shares[0]
        if main.error is not None:
            raise main.error
        ready = main.ready
        assert ready is not None
        _check_device(args, ready.provenance)
        for share in shares[1:]:
            if share.error is not None:
                live.line(f"flashtui doctor: a helper worker for {'+'.join(share.names or ())} did not "
                          f"start ({share.error}); the main worker probes those too")
        order = list(ready.backends or {})
        shares = doctor_parallel.assign(shares, order)
        live.line(f"worker ready in {ready.ready_s:.1f} s; probing backends with "
                  "tiny kernels (the slow ones last):")
        rows: dict[str, list[dict[str, Any]]] = {}
        last_row_s: dict[int, float] = {}

        def on_event(share: Any, event: Any) -> None:
            with lock:
                if isinstance(event, ProbeCellFinished):
                    cell = event.cell
                    per_row = max(1, len(share.names) if share.names is not None else len(order))
                    row = rows.setdefault(cell["backend"], [])
                    row.append(cell)
                    if len(row) == int(event.n_cells or 0) // per_row:
                        now = time.monotonic()
                        ran = any(c["status"] in ("ok", "failed") for c in row)
                        since = last_row_s.get(id(share), probe_started)
                        live.line(render_matrix_row(cell["backend"], row, now - since if ran else None))
                        last_row_s[id(share)] = now
                elif isinstance(event, Progress) and "first use" in str(event.text):
                    live.line(f"flashtui doctor: {event.text}...")

        probe_started = time.monotonic()
        if len(shares) == 1:
            reply = main.client.request(Probe(fastest=bool(args.fastest), full=bool(args.full)), ProbeFinished,
                                        timeout_s=PROBE_TIMEOUT_S, on_event=lambda event: on_event(main, event))
            result = reply.result
        else:
            result = doctor_parallel.run_parallel(shares, order, full=bool(args.full), fastest=bool(args.fastest),
                                                  timeout_s=PROBE_TIMEOUT_S, on_event=on_event)
    finally:
        for share in started_shares:
            share.client.close()
    probed_at_unix = time.time()
    cache: dict[str, Any] = {"cached": False, "cached_age_s": None, "probed_at_unix": probed_at_unix,
                             "path": str(path), "changes": lookup.changes}
    error = doctor_cache.save(ready.fields(), result, probed_at_unix)  # not a poisoned context's
    if error:
        cache["write_error"] = error
        _note(args, f"flashtui doctor: {error}")
    live.erase()
    return _emit(args, build_report(ready.fields(), result, env_preview["nvml"], _pyspy_state(), notes, cache))


def _run_capacity(args: argparse.Namespace) -> int:
    client = WorkerClient()
    try:
        _note(args, "flashtui doctor --capacity: starting the worker (importing torch)...")
        ready = client.start()
        _check_device(args, ready.provenance)
        device = args.device or ready.device_kind
        spec = capacity_spec(args, device)
        _note(args, "flashtui doctor --capacity: searching (doubling, then bisection)...")
        reply = client.request(Capacity(spec=spec.to_dict()), CapacityFinished,
                               timeout_s=CAPACITY_TIMEOUT_S)
    finally:
        client.close()
    result = {"schema": dict(CAPACITY_SCHEMA), "provenance": ready.provenance, **reply.result}
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        sys.stdout.write(render_capacity(result) + "\n")
    sys.stdout.flush()
    return 0


__all__ = ["register", "run", "capacity_spec"]
