"""Fold a sweep's events into a Session: the ONE recorder `flashtui bench` and the TUI share.

Client side (no torch). Whatever drives the sweep hands every client event to
:meth:`SweepRecorder.handle` and the session comes out the same: the worker's start-up
facts (``worker``: ready_s, ready_wall_s, ready_breakdown_s, pid, restarts, crashes), the
backends it could not offer, each finished cell journaled (flushed and fsync'd) before
anything else happens to it, the clocks and power the NVML sampler saw during the cell's
timed region in ``cell.telemetry``, cell marks (``timed_under_pyspy_record``), the py-spy
profile attachment, and at the end the sampler's samples in ``attachments.nvml`` and the
journal's footer. Front ends only render; a test feeds one recorded stream through both
and compares the JSON (tests/tui/test_one_recorder.py).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Callable

from flashtui.core.protocol import CellFinished, Event, SweepFinished, WorkerDied, WorkerReady, WorkerRestarted
from flashtui.core.results import Cell
from flashtui.core.session import Session
from flashtui.core.spec import SweepSpec
from flashtui.monitor.nvml import NvmlSampler, device_hint_from_provenance, telemetry_noise_reason
from flashtui.store.journal import SessionJournal

# Samples kept in the session (at 10 Hz: ~16 minutes); older ones are thinned, not lost silently.
MAX_SAMPLES_KEPT = 10_000

# A cell mark: its timings include py-spy record's sampling pauses.
MARK_PYSPY_RECORD = "timed_under_pyspy_record"


def new_session(spec: SweepSpec, ready: WorkerReady, ready_wall_s: float | None = None) -> Session:
    """A running session of ``spec`` on the worker that sent ``ready``.

    ``backends_unavailable``: what the worker cannot offer on the spec's device, less the
    backends the spec names (those get a cell with the reason).
    """
    session = Session(spec=spec.to_dict(), provenance=dict(ready.provenance))
    session.worker = {"ready_s": ready.ready_s, "ready_wall_s": ready_wall_s,
                      "ready_breakdown_s": ready.ready_breakdown_s, "pid": ready.pid,
                      "restarts": 0, "crashes": 0}
    named = set(spec.backends or ())
    session.backends_unavailable = {
        name: info.get("reason") or "unavailable"
        for name, info in ready.backends_for(spec.device).items()
        if not info.get("available") and name not in named
    }
    return session


def wants_monitor(spec: SweepSpec, ready: WorkerReady) -> bool:
    """NVML has something to watch: the sweep runs on the worker's GPU."""
    return ready.device_kind == "cuda" and spec.device == "cuda"


class SweepRecorder:
    """One sweep's record: session + optional journal + optional NVML sampler.

    ``owns_sampler``: the recorder started it for this sweep (bench) and stops it at the
    end; a shared one (the TUI's, running since the worker started) is left running and
    only its samples taken since this recorder began are attached.
    ``on_storage_error``: called once with a journal write error, after which the sweep
    goes on unjournaled (the TUI); without it the error propagates (bench).
    """

    def __init__(self, session: Session, journal: SessionJournal | None = None,
                 sampler: Any | None = None, *, owns_sampler: bool = True,
                 cell_marks: dict[str, Any] | None = None,
                 on_storage_error: Callable[[Exception], None] | None = None) -> None:
        self.session = session
        self.journal = journal
        self.sampler = sampler
        self.owns_sampler = owns_sampler
        self.on_storage_error = on_storage_error
        # Set on every cell's extra while present (see set_mark).
        self.cell_marks = dict(cell_marks or {})
        # A worker pool over several GPUs: one sampler per GPU, by the cells' extra.device_index
        # (``sampler`` is then the first GPU's, whose samples stay in attachments.nvml).
        self.device_samplers: dict[int, Any] = {}
        self.closed = False
        self._since_s = time.monotonic()

    @classmethod
    def begin(cls, spec: SweepSpec, ready: WorkerReady, *, ready_wall_s: float | None = None,
              journal: bool = True, sampler: Any | None = None, owns_sampler: bool = True,
              cell_marks: dict[str, Any] | None = None,
              on_storage_error: Callable[[Exception], None] | None = None) -> "SweepRecorder":
        """A new session of ``spec``, its journal opened in the store when ``journal``.

        ``sampler`` is used only when the sweep runs on the worker's GPU (wants_monitor).
        """
        recorder = cls(new_session(spec, ready, ready_wall_s),
                       sampler=sampler if wants_monitor(spec, ready) else None,
                       owns_sampler=owns_sampler, cell_marks=cell_marks,
                       on_storage_error=on_storage_error)
        if journal:
            from flashtui.store.index import open_journal

            recorder._journal_op(lambda: setattr(recorder, "journal", open_journal(recorder.session)))
        return recorder

    @staticmethod
    def start_monitor(spec: SweepSpec, ready: WorkerReady, rate_hz: float,
                      factory: Callable[[WorkerReady, float], Any] | None = None) -> NvmlSampler | None:
        """An NVML sampler on the worker's GPU, started (None off the GPU or at 0 Hz).

        ``factory(ready, rate_hz)`` builds it elsewhere (a remote worker's host samples its GPU)."""
        if not wants_monitor(spec, ready) or rate_hz <= 0:
            return None
        if factory is not None:
            sampler = factory(ready, rate_hz)
            sampler.start()
            return sampler
        sampler = NvmlSampler(rate_hz=rate_hz, pid=ready.pid, **device_hint_from_provenance(ready.provenance))
        sampler.start()
        return sampler

    # ------------------------------------------------------------------ events
    def handle(self, event: Event) -> Cell | None:
        """Apply one client event; returns the recorded Cell for CellFinished."""
        if self.closed:
            return None
        if isinstance(event, CellFinished):
            cell = event.to_cell()
            cell.extra.update(self.cell_marks)
            self._attach_telemetry(cell)
            self.session.add_cell(cell)
            if self.journal is not None:
                self._journal_op(lambda: self.journal.append_cell(cell))  # type: ignore[union-attr]
            return cell
        if isinstance(event, WorkerDied):
            self.session.worker["crashes"] = int(self.session.worker.get("crashes") or 0) + 1
        elif isinstance(event, WorkerRestarted):
            self.session.worker["restarts"] = int(self.session.worker.get("restarts") or 0) + 1
            if self.sampler is not None and event.pid is not None:
                self.sampler.watch_pid(event.pid)
        elif isinstance(event, SweepFinished):
            self.session.finish("cancelled" if event.cancelled else "complete")
        return None

    def set_mark(self, name: str, value: Any = True) -> None:
        """Mark every cell recorded from now on (e.g. MARK_PYSPY_RECORD)."""
        self.cell_marks[name] = value

    def clear_mark(self, name: str) -> None:
        self.cell_marks.pop(name, None)

    def attach_profile(self, path: str | Path, *, summary: dict[str, Any] | None = None,
                       error: str | None = None, **details: Any) -> dict[str, Any]:
        """The py-spy profile attachment, one flat shape wherever it was recorded:
        ``path``, ``format``, the speedscope summary's keys (``n_samples``, ``top_frames``...)
        and ``details`` (a TUI recording's pid, started_at, cells, stopped); ``error`` says
        what went wrong (alone with ``path`` when no valid profile was written)."""
        attachment: dict[str, Any] = {"path": str(path)}
        if summary is not None:
            attachment.update({"format": "speedscope", **summary, **details})
            # The summary names the file it read (bench: py-spy's temp file, moved since).
            attachment["path"] = str(path)
        if error is not None:
            attachment["error"] = error
        self.session.attachments["profile"] = attachment
        if self.journal is not None and not self.closed:
            self._journal_op(lambda: self.journal.update(attachments={"profile": attachment}))  # type: ignore[union-attr]
        return attachment

    def attach_worker_log(self, log_path: str | Path | None) -> dict[str, Any] | None:
        """Keep the worker's full stderr log with the session (the panel hides its noise).

        Copied next to the journal as ``<journal>.worker.log`` when the session is
        journaled; otherwise the attachment points at the worker's own log file."""
        if log_path is None or not Path(log_path).is_file():
            return None
        kept = Path(log_path)
        saved = self.journal.saved_path if self.journal is not None else None
        if saved is not None:
            target = saved.with_name(saved.name + ".worker.log")
            try:
                shutil.copyfile(log_path, target)
                kept = target
            except OSError:
                pass  # the worker's own file is still there; point at it
        attachment = {"path": str(kept), "bytes": kept.stat().st_size}
        self.session.attachments["worker_log"] = attachment
        if self.journal is not None and not self.closed:
            self._journal_op(lambda: self.journal.update(attachments={"worker_log": attachment}))  # type: ignore[union-attr]
        return attachment

    def storage_notice(self) -> str | None:
        """A new line saying the journal moved (full disk, read-only store) or is memory-only."""
        return self.journal.new_warning() if self.journal is not None else None

    def _attach_telemetry(self, cell: Cell) -> None:
        if cell.extra.get("rank", 0) != 0:
            return  # another torchrun rank's cell ran on another GPU than the one sampled
        # A pool's cell: its own GPU's sampler; without per-GPU samplers (the TUI's one, on
        # its worker's cuda:0), only a cell of GPU 0 may take that one's readings.
        index = cell.extra.get("device_index")
        if self.device_samplers:
            sampler = self.device_samplers.get(index)
        else:
            sampler = self.sampler if index in (None, 0) else None
        if sampler is None:
            return
        t0, t1 = cell.extra.get("t_start_wall_s"), cell.extra.get("t_end_wall_s")
        if t0 and t1:
            cell.telemetry = sampler.window(t0, t1, clock="wall")
            # The engine judged the spread and the host; the GPU's own conditions are
            # judged here, where the NVML readings are (a throttled cell is noisy too).
            gpu_reason = telemetry_noise_reason(cell.telemetry)
            if gpu_reason and cell.status == "ok":
                cell.noisy = True
                cell.noise_reason = "; ".join(r for r in (cell.noise_reason, gpu_reason) if r)

    def _journal_op(self, op: Callable[[], Any]) -> None:
        if self.on_storage_error is None:
            op()
            return
        try:
            op()
        except Exception as exc:  # noqa: BLE001 - the sweep goes on, unjournaled, and says so
            self.journal = None
            self.on_storage_error(exc)

    def resume(self) -> None:
        """Record more cells into this finished session (a re-run of some of its cells).

        They are kept in the session only: its journal already has its footer.
        """
        if self.closed:
            self.closed = False
            self.journal = None
            self.session.status = "running"

    # ------------------------------------------------------------------- end
    def close(self, status: str | None = None) -> None:
        """Attach the sampler's samples (stopping it if owned) and write the journal footer.

        ``status`` ends a session still running (cancelled, failed); idempotent.
        """
        if self.closed:
            return
        self.closed = True
        # Where the run's time went (bench --phases; the TUI records the same): per-cell
        # phases summed, plus worker start, over the wall since the worker was asked for.
        ready_wall_s = float(self.session.worker.get("ready_wall_s") or 0.0)
        self.session.worker["phases_s"] = phase_totals(
            self.session, ready_wall_s, ready_wall_s + time.monotonic() - self._since_s)
        if status is not None and self.session.status == "running":
            self.session.finish(status)
        if self.sampler is not None:
            self.session.attachments["nvml"] = self._sampler_attachment(self.sampler)
        # The other GPUs of a pool, by device index (attachments.nvml is the first GPU's).
        for index, sampler in sorted(self.device_samplers.items()):
            if sampler is self.sampler:
                self.session.attachments["nvml"]["device_index"] = index
            else:
                by_device = self.session.attachments.setdefault("nvml_by_device", {})
                by_device[str(index)] = {**self._sampler_attachment(sampler), "device_index": index}
        journal = self.journal
        if journal is not None:
            self._journal_op(lambda: journal.finish(self.session))

    def _sampler_attachment(self, sampler: Any) -> dict[str, Any]:
        """A sampler's samples (thinned past MAX_SAMPLES_KEPT), status and stats; stops it if owned."""
        if self.owns_sampler:
            sampler.stop()
        samples = [s.to_dict() for s in sampler.samples(None if self.owns_sampler else self._since_s)]
        if len(samples) > MAX_SAMPLES_KEPT:
            step = -(-len(samples) // MAX_SAMPLES_KEPT)
            samples = samples[::step]
        return {"status": sampler.status.to_dict(), "rate_hz": sampler.rate_hz,
                "stats": sampler.stats(), "samples": samples}


def phase_totals(session: Session, worker_start_s: float, wall_s: float) -> dict[str, float]:
    """Seconds per phase over every cell, plus worker start, compile, the rest, the wall."""
    totals: dict[str, float] = {"worker_start": worker_start_s}
    compile_s = 0.0
    for cell in session.cells:
        for name, seconds in (cell.extra.get("phases_s") or {}).items():
            totals[name] = totals.get(name, 0.0) + float(seconds)
        compile_s += float(cell.extra.get("compile_s") or 0.0)
        if cell.extra.get("start_up_s") is not None:  # the worker's start-up before its first cell
            totals["start_up"] = totals.get("start_up", 0.0) + float(cell.extra["start_up_s"])
    accounted = sum(totals.values())
    totals["compile_in_first_call"] = compile_s
    totals["other"] = max(0.0, wall_s - accounted)  # planning, events, journal, sampler, shutdown
    totals["wall"] = wall_s
    return {name: round(value, 3) for name, value in totals.items()}
