"""`flashtui bench`: run a sweep headless, print a table (or the session JSON)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from flashtui.store import index as store
from flashtui.commands import distributed as dist_cmd
from flashtui.errors import HangUp, StorageError, Terminated, UsageError
from flashtui.client.worker_client import WorkerClient, WorkerError
from flashtui.client.recorder import MARK_PYSPY_RECORD, SweepRecorder, phase_totals  # noqa: F401 - re-exported
from flashtui.core import protocol as proto
from flashtui.core.session import Session
from flashtui.core.spec import (
    MAX_SEED, MODES, CellKey, SpecError, SweepSpec, check_seed, cpu_defaults, cuda_defaults, parse_backends,
    parse_dtypes, parse_seqs,
)
from flashtui.core.units import fmt_clock, fmt_ms, fmt_seconds


def _arg_type(parser: Callable[[str], Any], name: str) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return parser(text)
        except SpecError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    convert.__name__ = name
    return convert


def _positive(name: str) -> Callable[[str], int]:
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a positive integer, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{name} must be a positive integer, got {value}")
        return value
    convert.__name__ = name
    return convert


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _positive_seconds(text: str) -> float:
    """A finite number of seconds > 0 (0 would fail every cell at once)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not (0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text}")
    return value


def _seed(text: str) -> int:
    try:
        return check_seed(int(text.strip()))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer between 0 and {MAX_SEED}, got {text!r}") from None


# The least a cell can take beyond its warm-up: inputs, the first call, the timed reps,
# the memory and dispatch passes. A --cell-timeout below warm-up + this fails every cell.
MIN_CELL_S = 1.0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench", help="run a sweep headless and print the table",
        description="Run standard attention and the flash kernels side by side: "
                    "backend x sequence length x dtype.",
    )
    p.add_argument("--mode", choices=MODES, default="kernel",
                   help="kernel: attention alone; prefill/decode: a whole model (default kernel)")
    p.add_argument("--model", help="model for prefill/decode: a built-in name, a local path, or org/name")
    p.add_argument("--new-tokens", type=_positive("new-tokens"), help="decode: tokens to generate (default 32)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow a hub model's own code (off by default)")
    p.add_argument("--batch", type=_positive("batch"))
    p.add_argument("--heads", type=_positive("heads"))
    p.add_argument("--kv-heads", type=_positive("kv-heads"), help="fewer than --heads for GQA/MQA")
    p.add_argument("--head-dim", type=_positive("head-dim"))
    p.add_argument("--seq", type=_arg_type(parse_seqs, "seq"), help="sequence lengths, e.g. 512,1024,2048")
    p.add_argument("--dtype", type=_arg_type(parse_dtypes, "dtype"), help="fp32, fp16, bf16 (comma list)")
    p.add_argument("--backends", type=_arg_type(parse_backends, "backends"),
                   help="comma list (default: every available one)")
    p.add_argument("--causal", dest="causal", action="store_true", default=None)
    p.add_argument("--no-causal", dest="causal", action="store_false")
    p.add_argument("--backward", action="store_true", default=None, help="time forward+backward")
    p.add_argument("--device", choices=("cuda", "cpu"), help="default: cuda if present")
    p.add_argument("--warmup-ms", type=_non_negative_float,
                   help="least warm-up wall time per cell, then on until steady, at most 100 ms (default 25 on a GPU, 50 on CPU)")
    p.add_argument("--reps", type=_positive("reps"), help="timed repetitions per cell")
    p.add_argument("--seed", type=_seed, help=f"input seed, an integer 0..{MAX_SEED} (default 0)")
    p.add_argument("--no-parity", dest="parity", action="store_false", default=None,
                   help="skip the fp64 oracle (faster; no accuracy columns)")
    p.add_argument("--cold-l2", dest="cold_l2", action="store_true", default=None,
                   help="flush the L2 cache before every timed call (as triton's do_bench); default: L2 warm")
    var = p.add_argument_group("attention variants (kernel mode; --pad also in model mode)")
    var.add_argument("--window", metavar="N", help="causal sliding-window attention over the last N tokens")
    var.add_argument("--softcap", metavar="X", help="tanh soft-capping of the scores at X (Gemma-2: 50)")
    var.add_argument("--docs", metavar="N",
                     help="pack each row from N documents (lengths from the seed); no attention across")
    var.add_argument("--pad", metavar="F", help="a padded batch: fraction F of each row is (left) padding")
    var.add_argument("--q-len", metavar="N",
                     help="queries per row (default: --seq); 1 is a decode step against a KV cache of --seq")
    var.add_argument("--page-size", metavar="P", help="a paged KV cache of P-token pages (where a backend has one)")
    p.add_argument("--json", action="store_true", help="write the whole session as JSON to stdout")
    p.add_argument("--out", metavar="PATH", help="also write the session JSON to PATH")
    p.add_argument("--cell-timeout", type=_positive_seconds, metavar="S",
                   help="kill and restart the worker when one cell takes longer than S seconds")
    p.add_argument("--monitor-hz", type=_non_negative_float, default=10.0, metavar="HZ",
                   help="NVML sampling rate during the sweep (0 turns it off; default 10, max 50)")
    pool = p.add_argument_group("parallel workers (cells shared out, merged into one session)")
    pool.add_argument("--gpus", metavar="all|0,1,...",
                      help="one worker per GPU, each pinned with CUDA_VISIBLE_DEVICES")
    pool.add_argument("--workers", type=_positive("workers"), metavar="N",
                      help="N workers per device (the CPU, or each --gpus GPU); more than one on a "
                           "device marks its timings shared (noisy)")
    p.add_argument("--profile", metavar="PATH",
                   help="record the worker under py-spy; write a speedscope profile to PATH")
    p.add_argument("--no-journal", dest="journal", action="store_false",
                   help="do not keep this session in the sessions store")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    from flashtui.client.remote import add_host_arguments

    add_host_arguments(p, sub=True)
    p.add_argument("--phases", action="store_true",
                   help="after the table, where the wall time went (worker start, compile, warm-up, "
                        "timing, memory, dispatch, parity oracle, parity); always in --json")
    dist_cmd.add_arguments(p)
    p.set_defaults(func=run)


SPEC_FLAGS = {
    "mode": "mode", "model": "model", "new_tokens": "new_tokens", "batch": "batch",
    "heads": "heads", "kv_heads": "kv_heads", "head_dim": "head_dim", "seq": "seqs",
    "dtype": "dtypes", "backends": "backends", "causal": "causal", "backward": "backward",
    "warmup_ms": "warmup_ms", "reps": "reps", "seed": "seed", "parity": "parity",
    "cold_l2": "cold_l2",
    # Variants: passed as typed, validated by SweepSpec (the same lines the TUI shows).
    "window": "window", "softcap": "softcap", "docs": "docs", "pad": "pad", "q_len": "q_len",
    "page_size": "page_size",
}


def spec_from_args(args: argparse.Namespace, cuda_present: bool) -> SweepSpec:
    """Device defaults first, then every flag the user gave."""
    device = args.device or ("cuda" if cuda_present else "cpu")
    base = cuda_defaults() if device == "cuda" else cpu_defaults()
    if args.mode != "kernel":
        base.update(dtypes=("bf16",) if device == "cuda" else ("fp32",), batch=1 if device == "cpu" else 4,
                    seqs=(128, 256) if device == "cpu" else (512, 1024, 2048))
    for flag, field_name in SPEC_FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            base[field_name] = value
    if args.trust_remote_code:
        base["trust_remote_code"] = True
    if base.get("model"):
        from flashtui.core.model_catalog import classify, unknown_model_message

        kind = classify(base["model"])
        if kind == "unknown":
            raise SpecError(unknown_model_message(base["model"]))
        if kind == "path" and not Path(base["model"]).expanduser().is_dir():
            raise SpecError(f"model path {base['model']} is not a directory (expected a save_pretrained folder)")
        if kind == "path":
            # The worker may run elsewhere (another cwd, another host): send it absolute.
            base["model"] = str(Path(base["model"]).expanduser().resolve())
    base["device"] = device
    return SweepSpec(**base)


class Progress:
    """A one-line progress bar with ETA on stderr (a line per cell when not a terminal)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()
        self.current = ""

    def _eta(self) -> str:
        if not self.done:
            return "ETA --"
        elapsed = time.monotonic() - self.started
        remaining = elapsed / self.done * (self.total - self.done)
        return f"ETA {fmt_clock(remaining)}"

    def show(self, text: str, milestone: bool = False) -> None:
        """Redraw the bar; off a terminal only milestones (finished cells) print a line."""
        if not self.enabled or (not self.tty and not milestone):
            return
        width = 24
        filled = int(width * self.done / self.total)
        bar = "#" * filled + "-" * (width - filled)
        line = f"[{bar}] {self.done}/{self.total} {text} {self._eta()}"
        if self.tty:
            sys.stderr.write("\r\x1b[2K" + line[:200])
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def note(self, text: str) -> None:
        if self.enabled:
            sys.stderr.write(("\r\x1b[2K" if self.tty else "") + text + "\n")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()


def drive(client: WorkerClient, spec: SweepSpec, recorder: SweepRecorder, progress: Progress,
          cells: list[CellKey] | None = None, rank: "dist_cmd.RankInfo | None" = None) -> None:
    """Run the sweep, folding every event into the recorder's session as it arrives
    (``rank``: as rank 0 under torchrun, the other ranks' cells arriving as they finish)."""
    events = client.run_sweep(spec, cells) if rank is None else \
        dist_cmd.rank_events(client, spec, cells or client.plan(spec), rank)
    for msg in events:
        cell = recorder.handle(msg)
        if isinstance(msg, proto.SweepStarted):
            progress.total = max(msg.n_cells, 1)
        elif isinstance(msg, proto.CellStarted):
            progress.current = msg.key.label()
            # A worker pool: what each GPU (or worker) is on, in one line.
            status_line = getattr(client, "status_line", None)
            progress.show(status_line() if status_line else progress.current)
        elif isinstance(msg, proto.Progress):
            progress.show(msg.text)
        elif cell is not None:
            progress.done += 1
            took = f" {fmt_ms(cell.median_ms)}" if cell.status == "ok" and cell.median_ms is not None else ""
            if rank is not None and "rank" in cell.extra:
                took += f" (rank {cell.extra['rank']})"
            progress.show(f"{cell.key.label()}: {cell.status}{took}", milestone=True)
        elif isinstance(msg, proto.WorkerDied):
            progress.note(f"worker died: {msg.reason}")
        elif isinstance(msg, proto.WorkerRestarted):
            progress.note(f"worker restarted (pid {msg.pid}); continuing")
        elif isinstance(msg, proto.Log) and msg.level in ("warning", "error"):
            text = msg.text.strip().splitlines()
            progress.note(f"worker {msg.level}: {text[-1] if text else ''}")
        elif isinstance(msg, proto.RequestFailed):
            raise SpecError(msg.reason)


def exit_code(session: Session) -> int:
    """1 when a cell failed or a measured cell missed parity; OOM/unsupported are results."""
    for cell in session.cells:
        if cell.status == "failed":
            return 1
        if cell.parity is not None and cell.parity.passed is False:
            return 1
    return 0


def check_args(args: argparse.Namespace) -> None:
    """Everything checkable without the worker, checked before paying its start-up.

    A typo should not cost a torch import, and an output path that cannot be written
    must not cost a sweep. (Device-dependent defaults are applied again later.)
    """
    from flashtui.store.atomic import check_output_path

    if args.mode != "kernel" and not args.model:
        raise SpecError(f"--mode {args.mode} needs --model (a built-in name such as gpt2, or a local path)")
    spec = spec_from_args(args, cuda_present=args.device != "cpu")
    if args.monitor_hz and not 0.5 <= args.monitor_hz <= 50:
        raise SpecError(f"--monitor-hz must be 0 (off) or between 0.5 and 50, got {args.monitor_hz:g}")
    if args.cell_timeout is not None:
        least_s = spec.warmup_ms / 1e3 + MIN_CELL_S
        if args.cell_timeout < least_s:
            raise SpecError(f"--cell-timeout {args.cell_timeout:g} s is below what a cell needs: "
                            f"{spec.warmup_ms / 1e3:g} s of warm-up (--warmup-ms) plus at least "
                            f"{MIN_CELL_S:g} s to run; give {least_s:g} or more")
    _check_pool_args(args)
    targets = {}
    for flag, path in (("--out", args.out), ("--profile", args.profile)):
        if path:
            targets[flag] = check_output_path(path, flag)
    if len(targets) == 2 and targets["--out"] == targets["--profile"]:
        raise SpecError(f"--out and --profile name the same file ({targets['--out']}); give two paths")


def run(args: argparse.Namespace) -> int:
    from flashtui.reports.table import render_session

    if getattr(args, "distributed", False) and getattr(args, "host", None):
        raise UsageError("--host and --distributed do not go together: under torchrun each rank's "
                         "worker runs on that rank's own node")
    rank = dist_cmd.from_args(args)  # None unless --distributed (then torchrun's env, or exit 2)
    if rank is not None and not rank.is_leader:
        return dist_cmd.run_rank(args, rank, spec_from_args, check_args)
    check_args(args)
    client, profile_tmp, remote_profile = make_client(
        args, env=dist_cmd.worker_env(rank) if rank is not None else None)
    progress = Progress(1, enabled=not args.quiet)
    progress.show("starting worker (importing torch, initializing CUDA)")
    recorder: SweepRecorder | None = None
    pool = None
    status = "failed"
    swept = False  # True once the sweep ran to its end (not an error before or during it)
    out_error: str | None = None
    try:
        ready = client.start()
        prov = ready.provenance
        cuda_present = ready.device_kind == "cuda"
        if args.device == "cuda" and not cuda_present:
            raise SpecError(f"--device cuda but {prov.get('cuda_unavailable_reason', 'no CUDA device')}; "
                            "use --device cpu")
        spec = spec_from_args(args, cuda_present)
        for note in spec.notes():
            progress.note(f"note: {note}")
        cells = spec.cells(ready.available(spec.device))
        progress.total = len(cells)
        pool = _start_pool(args, client, ready, spec, progress)
        if pool is not None:
            client = pool  # type: ignore[assignment] - WorkerClient's face, over N workers
            ready = pool.ready  # the first slot's worker (pinned to its GPU) speaks for the session
        # Under --profile the worker runs inside py-spy record, whose samples pause it.
        marks = {MARK_PYSPY_RECORD: True} if args.profile else None
        recorder = SweepRecorder.begin(spec, ready, ready_wall_s=client.ready_wall_s, journal=args.journal,
                                       cell_marks=marks)
        # The journal appears with the first cell: the neighbours' note is in its header.
        # (Another host's GPU neighbours are not visible to this machine's NVML; a pool's
        # workers are this process's children: own_pid = this process passes over them.)
        _warn_about_neighbours(recorder.session, ready.pid if pool is None else os.getpid(),
                               spec.device == ready.device_kind and not getattr(client, "remote_host", None))
        # Started once the journal is open (a storage error then leaves no sampler running).
        recorder.sampler = SweepRecorder.start_monitor(spec, ready, args.monitor_hz,
                                                       factory=getattr(client, "nvml_sampler", None))
        if pool is not None:
            _monitor_pool(pool, recorder, spec, args.monitor_hz)
        if rank is not None:
            dist_cmd.begin(recorder, cells, rank, progress.note)
        drive(client, spec, recorder, progress, cells, rank)
        status = recorder.session.status if recorder.session.status != "running" else "complete"
        swept = True
    except KeyboardInterrupt as exc:
        status = "cancelled"
        if isinstance(exc, (HangUp, Terminated)):
            # The terminal is gone (SSH dropped), or SIGTERM asks us to end now (a
            # `timeout`, a scheduler): stop the worker at once, not after its cell, so
            # nothing is left holding GPU memory. Finished cells are still emitted.
            client.kill()
        raise
    finally:
        progress.close()
        client.close()  # stopping the worker (CUDA teardown: ~1.3 s on the H200) is in "other"
        if recorder is not None and pool is not None:
            _end_pool(pool, recorder)
        if recorder is not None:
            if remote_profile is not None and profile_tmp is not None:
                _fetch_remote_profile(client, remote_profile, profile_tmp, progress)
            if profile_tmp is not None:
                _attach_profile(recorder, profile_tmp, Path(args.profile).expanduser(), progress)
            # The worker's full stderr log goes with the session (as the TUI keeps it).
            recorder.attach_worker_log(getattr(client, "log_path", None))
            recorder.close(status)
            # The table first: whatever fails after the sweep, the numbers reach the screen.
            # (An error before any cell, e.g. a model that cannot load, is its one line only.)
            if swept or recorder.session.cells:
                out_error = _emit(recorder.session, args, render_session, _kept_where(recorder))
                if args.phases and not args.json:
                    sys.stdout.write(render_phases(recorder.session.worker.get("phases_s") or {}) + "\n")
                    sys.stdout.flush()
            _report_storage(recorder, progress, out_error)
        elif profile_tmp is not None:
            _unlink_quietly(profile_tmp)
    if out_error is not None:
        raise StorageError(out_error)
    return exit_code(recorder.session)


def make_client(args: argparse.Namespace, env: dict[str, str] | None = None
                ) -> tuple[WorkerClient, Path | None, str | None]:
    """The worker client for this run: over ssh for ``--host``, else a local process.

    Under ``--profile`` the worker runs inside ``py-spy record`` (on the host for --host,
    writing a temp file there that is copied back at the end). Returns the client, the
    local temp file py-spy's output lands in, and the profile's path on the host (or None).
    """
    from flashtui.store.atomic import temp_path_beside

    profile_tmp: Path | None = None
    # py-spy writes a file of its own: a fresh temp beside the target, moved over it
    # atomically at the end (through a symlink, never onto a FIFO or device).
    if getattr(args, "host", None):
        import uuid

        from flashtui.client.remote import RemoteWorkerClient, SshTarget, preflight, remote_profile_launcher

        target = SshTarget.from_options(args.host, getattr(args, "remote_python", None))
        client = RemoteWorkerClient(target, cell_timeout_s=args.cell_timeout)
        if not args.profile:
            return client, None, None
        client.hello = preflight(target)
        remote_profile = f"/tmp/flashtui-profile-{uuid.uuid4().hex}.json"
        client.launcher = remote_profile_launcher(client.hello, target.host, remote_profile)
        return client, temp_path_beside(args.profile), remote_profile
    launcher = None
    if args.profile:
        from flashtui.monitor.pyspy import find_pyspy, record_command

        if find_pyspy() is None:
            raise SpecError("--profile needs py-spy: pip install py-spy")
        profile_tmp = temp_path_beside(args.profile)
        launcher = record_command(profile_tmp)
    return WorkerClient(cell_timeout_s=args.cell_timeout, launcher=launcher, env=env), profile_tmp, None


def _fetch_remote_profile(client: Any, remote_path: str, local_tmp: Path, progress: Progress) -> None:
    """Copy py-spy's output from the host into the local temp file (validated next)."""
    try:
        client.fetch_file(remote_path, local_tmp)
    except (OSError, subprocess.TimeoutExpired) as exc:
        progress.note(f"profile not copied from {client.remote_host}: {exc}")


def _check_pool_args(args: argparse.Namespace) -> None:
    """--gpus/--workers checks that need no worker (the GPU count is checked once one runs)."""
    gpus = getattr(args, "gpus", None)
    if gpus is None and getattr(args, "workers", None) is None:
        return
    from flashtui.client.worker_pool import parse_gpus

    if gpus is not None:
        parse_gpus(gpus)
        if args.device == "cpu":
            raise SpecError("--gpus runs workers on GPUs but --device cpu was given; "
                            "use --workers N to share the CPU")
    for flag in ("host", "distributed"):
        if getattr(args, flag, None):
            raise SpecError(f"--gpus/--workers start local workers; they do not go with --{flag}")
    if args.profile:
        raise SpecError("--profile records one worker under py-spy; drop --gpus/--workers to profile")


def _start_pool(args: argparse.Namespace, client: WorkerClient, ready: proto.WorkerReady, spec: SweepSpec,
                progress: Progress) -> Any:
    """The worker pool --gpus/--workers ask for, started (None: the plain single worker).

    Built by client.worker_pool.pool_for (which keeps the first worker where it can).
    Started before the journal opens: a bad --gpus stores nothing.
    """
    if getattr(args, "gpus", None) is None and getattr(args, "workers", None) is None:
        return None
    from flashtui.client.worker_pool import pinned_env, pool_for

    def make_client(env: dict[str, str]) -> WorkerClient:
        return WorkerClient(env=pinned_env(env), cell_timeout_s=args.cell_timeout)

    pool = pool_for(client, ready, device=spec.device, gpus=args.gpus, workers=args.workers,
                    make_client=make_client)
    where = ", ".join(sorted({s.label for s in pool.slots}))
    progress.show(f"starting {len(pool.slots)} workers ({where})")
    try:
        pool.start()
    except BaseException:
        pool.close()
        raise
    return pool


def _monitor_pool(pool: Any, recorder: SweepRecorder, spec: SweepSpec, monitor_hz: float) -> None:
    """Record the pool's workers; on GPUs, one NVML sampler per GPU (each found by its own
    worker's PCI bus id) in place of the first worker's, which may sit on another GPU."""
    recorder.session.worker["pool"] = pool.summary()
    devices = sorted({s.device_index for s in pool.slots if s.device_index is not None})
    if recorder.sampler is None or not devices:
        return
    recorder.sampler.stop()
    recorder.sampler = None
    for index in devices:
        i = next(n for n, s in enumerate(pool.slots) if s.device_index == index)
        sampler = SweepRecorder.start_monitor(spec, pool.readies[i], monitor_hz)
        if sampler is not None:
            recorder.device_samplers[index] = sampler
            recorder.sampler = recorder.sampler or sampler


def _end_pool(pool: Any, recorder: SweepRecorder) -> None:
    """Record the pool's workers, and any cell finished but not yet handed on (Ctrl-C)."""
    for event in pool.take_unmerged():
        recorder.handle(event)
    recorder.session.worker["pool"] = pool.summary()


def _warn_about_neighbours(session: Session, worker_pid: int, on_device: bool) -> None:
    """Say so when another sweep (or any GPU job) runs on this device: timings disturb each other."""
    from flashtui.store import live

    key = live.device_key(session.spec, session.provenance)
    others = [m for m in store.live_sweeps(exclude=session.id) if m.get("device") == key]
    notes = {}
    if others:
        where = "the CPU" if key == "cpu" else f"GPU {session.provenance.get('device_name', '')}".strip()
        names = ", ".join(live.describe(m) for m in others[:3])
        _warn(f"another flashtui sweep is running on {where}: {names}; the timings of both "
              "disturb each other (let one finish first)")
        notes["concurrent_sweeps"] = [m.get("session_id") for m in others]
    if on_device and session.provenance.get("device_kind") == "cuda":
        from flashtui.monitor.nvml import other_compute_processes

        found = other_compute_processes(session.provenance, worker_pid)
        if found.count:
            shown = ", ".join(f"pid {p['pid']}" + (f" ({p['name'][:40]})" if p.get("name") else "")
                              for p in found.processes[:3])
            if not others:  # a flashtui neighbour was named already
                _warn(f"{found.count} other process(es) compute on this GPU ({shown}): "
                      "timings taken now are disturbed by their work")
            notes["other_gpu_processes"] = found.to_dict()
    if notes:
        session.provenance = {**session.provenance, **notes}


def _warn(text: str) -> None:
    """A warning reaches stderr even under --quiet (which silences progress only)."""
    sys.stderr.write(f"flashtui: warning: {text}\n")
    sys.stderr.flush()


def _report_storage(recorder: SweepRecorder, progress: Progress, out_error: str | None) -> None:
    journal = recorder.journal
    session = recorder.session
    if journal is None:
        return
    warning = journal.warning()
    if warning:
        hint = f" (flashtui export {journal.saved_path} --format html)" if journal.saved_path else ""
        _warn(warning + hint)
    elif journal.saved_path is not None:
        progress.note(f"session {session.id} saved (flashtui export {session.id} --format html)")
    elif not session.cells:
        progress.note("no cell finished: no session was stored")


# Phases in the order a cell goes through them (engine.phases), then the rest of the run.
PHASE_ORDER = ("worker_start", "start_up", "profiler_start", "inputs", "first_call", "heap", "warmup", "timing",
               "memory", "dispatch", "parity_oracle", "parity")


def render_phases(totals: dict[str, float]) -> str:
    """'where the time went' lines, seconds and share of the wall."""
    wall = totals.get("wall") or 0.0
    names = [n for n in PHASE_ORDER if n in totals] + [n for n in totals if n not in PHASE_ORDER
                                                       and n not in ("wall", "compile_in_first_call")]
    lines = [f"where the {fmt_seconds(wall)} went:"]
    for name in names:
        share = f"{100 * totals[name] / wall:4.0f} %" if wall else "NA"
        lines.append(f"  {name:<14} {fmt_seconds(totals[name]):>9}  {share}")
    if totals.get("compile_in_first_call"):
        lines.append(f"  (of first_call, compile of flex/fa4: {fmt_seconds(totals['compile_in_first_call'])})")
    return "\n".join(lines)


def _attach_profile(recorder: SweepRecorder, tmp: Path, path: Path, progress: Progress) -> None:
    from flashtui.monitor.pyspy import SpeedscopeError, validate_speedscope
    from flashtui.store.atomic import StorageError as _StorageError, atomic_move

    try:
        summary = validate_speedscope(tmp)
    except (SpeedscopeError, OSError) as exc:
        _unlink_quietly(tmp)
        progress.note(f"profile not written: {exc}")
        recorder.attach_profile(path, error=str(exc))
        return
    try:
        atomic_move(tmp, path)
    except _StorageError as exc:
        # The recording is whole in the temp file: keep it there rather than lose it.
        _warn(f"--profile: {exc}; the profile is kept at {tmp}")
        recorder.attach_profile(tmp, summary=summary, error=str(exc))
        return
    recorder.attach_profile(path, summary=summary)
    progress.note(f"py-spy profile: {path} ({summary.get('n_samples')} samples)")


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def _emit(session: Session, args: argparse.Namespace, render: Callable[[Session], str],
          kept: str = "the results are printed above") -> str | None:
    """Print the table (or JSON), then write --out; return --out's error line, if any."""
    data = session.to_dict()
    text = json.dumps(data, indent=2) + "\n"
    if args.json:
        sys.stdout.write(text)
    else:
        sys.stdout.write(render(session) + "\n")
    sys.stdout.flush()
    if not args.out:
        return None
    from flashtui.store.atomic import atomic_write_text

    try:
        atomic_write_text(Path(args.out), text)
    except StorageError as exc:
        return f"--out: {exc}; {kept}"
    return None


def _kept_where(recorder: SweepRecorder) -> str:
    """Where the results are, for the one line that says --out could not be written."""
    journal, session = recorder.journal, recorder.session
    if journal is None:
        return "the results are printed above (--no-journal: not stored)"
    if journal.saved_path is None:
        return "the results are printed above only"
    if journal.moved:
        return f"the results are printed above and kept in {journal.saved_path}"
    return f"the results are printed above and kept in the store as session {session.id}"


__all__ = ["register", "run", "spec_from_args", "drive", "exit_code", "phase_totals", "render_phases",
           "WorkerError"]
