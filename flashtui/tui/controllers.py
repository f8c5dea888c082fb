"""The TUI's state in plain Python: the sweep, the py-spy recording, the doctor.

No textual here: unit tests drive these objects directly with protocol events, no Pilot.
The app (tui/app.py) routes each typed message to one controller method and applies what
comes back: a :class:`View` (log lines, notifications, the "now running" line) or plain
data it pushes into a screen. Work that blocks (the worker, py-spy, NVML) stays in the
bridge and the app's threads; controllers only decide and remember.
"""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from flashtui.client.recorder import MARK_PYSPY_RECORD, SweepRecorder
from flashtui.core import protocol as proto
from flashtui.core.results import Cell
from flashtui.core.session import Session
from flashtui.core.spec import CellKey, SweepSpec
from flashtui.core.units import fmt_clock, fmt_ms_iqr
from flashtui.tui import present

RECORD_CELLS = 3  # a py-spy recording stops by itself after this many cells


def nvml_state() -> dict[str, Any]:
    """NVML's state as the doctor shows it (probe_nvml never raises)."""
    from flashtui.monitor.nvml import probe_nvml

    return probe_nvml().to_dict()


def pyspy_state() -> dict[str, Any]:
    """Whether py-spy is here (monitor.pyspy.pyspy_state, imported when asked)."""
    from flashtui.monitor.pyspy import pyspy_state as state

    return state()


@dataclass(frozen=True)
class Note:
    """A notification: ``App.notify(text, severity=..., title=..., timeout=...)``."""

    text: str
    severity: str = "information"
    title: str | None = None
    timeout: float | None = None  # None: Textual's default


@dataclass
class View:
    """What one step wants shown: worker-log lines, notifications, the "now" line."""

    logs: list[tuple[str, str]] = field(default_factory=list)  # (level, text)
    notes: list[Note] = field(default_factory=list)
    now: str | None = None

    def log(self, level: str, text: str) -> "View":
        self.logs.append((level, text))
        return self

    def note(self, text: str, severity: str = "information", title: str | None = None,
             timeout: float | None = None) -> "View":
        self.notes.append(Note(text, severity, title, timeout))
        return self


# ------------------------------------------------------------------------ sweep
class SweepController:
    """The current sweep: the worker it runs on, its recorder (the session), progress."""

    def __init__(self, *, journal: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        self.use_journal = journal
        self.clock = clock
        self.ready: proto.WorkerReady | None = None
        self.recorder: SweepRecorder | None = None
        self.spec: SweepSpec | None = None
        self.running = False
        self.done = 0
        self.total = 0
        self.started_s: float | None = None
        self._pyspy_mark = False
        # Cell dicts handed to the tables, by key (to_dict of every cell per update is O(n)).
        self._dict_cache: dict[CellKey, dict[str, Any]] = {}

    @property
    def session(self) -> Session | None:
        """The current (or last) session, as its recorder keeps it."""
        return self.recorder.session if self.recorder is not None else None

    def worker_ready(self, ready: proto.WorkerReady) -> None:
        self.ready = ready

    def refusal(self, *, has_worker: bool, busy_with: str | None) -> Note | None:
        """Why a sweep cannot start now (None: it can)."""
        if not has_worker:
            return Note("no worker (started without one)", "error")
        if busy_with == "probe":
            return Note("the doctor probe is running; the sweep can start when it is done", "warning")
        if busy_with is not None:
            return Note("a sweep is already running; cancel it first (c)", "warning")
        if self.ready is None:
            return Note("the worker is still starting; a moment", "warning")
        return None

    def start(self, spec: SweepSpec, cells: list[CellKey] | None = None, *,
              ready_wall_s: float | None = None, sampler: Any | None = None,
              on_storage_error: Callable[[Exception], None] | None = None) -> View:
        """Begin ``spec`` as a new session, or re-run ``cells`` into the current one."""
        assert self.ready is not None, "refusal() first"
        if cells is None or self.recorder is None:
            self.spec = spec
            self.close("cancelled" if self.running else None)
            self.recorder = SweepRecorder.begin(
                spec, self.ready, ready_wall_s=ready_wall_s, journal=self.use_journal,
                sampler=sampler, owns_sampler=False, on_storage_error=on_storage_error)
            self._dict_cache = {}
            if self._pyspy_mark:
                self.recorder.set_mark(MARK_PYSPY_RECORD)
        else:
            # A re-run into the finished session: kept in memory (its journal has its footer).
            self.recorder.resume()
        self.running = True
        self.done = 0
        self.total = len(cells) if cells else 0
        self.started_s = self.clock()
        what = (", ".join(c.label() for c in cells) if cells
                else f"{len(spec.seqs)} seqs × {len(spec.dtypes)} dtypes")
        return View().log("info", f"▶ sweep: {what}")

    def mark_pyspy(self, on: bool) -> None:
        """Cells recorded while py-spy record is attached carry MARK_PYSPY_RECORD."""
        self._pyspy_mark = on
        if self.recorder is not None:
            if on:
                self.recorder.set_mark(MARK_PYSPY_RECORD)
            else:
                self.recorder.clear_mark(MARK_PYSPY_RECORD)

    # ------------------------------------------------------------ events
    def sweep_started(self, event: proto.SweepStarted) -> None:
        self.total = event.n_cells

    def cell_started(self, event: proto.CellStarted) -> View:
        return View(now=f"running {event.key.label()}")

    def cell_finished(self, event: proto.CellFinished) -> tuple[Cell | None, View]:
        """Record the cell; the Cell (None when no session takes it) and what to show."""
        view = View()
        if self.recorder is None:
            return None, view
        try:
            cell = self.recorder.handle(event)
        except (KeyError, TypeError) as exc:
            return None, view.note(f"malformed cell from the worker: {exc}", "error")
        if cell is None:
            return None, view
        self.done += 1
        under_record = (" · timed under py-spy record (its pauses included)"
                        if cell.extra.get(MARK_PYSPY_RECORD) else "")
        view.log("info" if cell.status == "ok" else "error",
                 f"{cell.key.label()}: {fmt_ms_iqr(cell.median_ms, cell.iqr_ms)} · "
                 f"{present.status_text(cell.to_dict())}{under_record}")
        if cell.status == "failed":
            view.note(f"{cell.key.label()} failed: {cell.reason}", "error", "cell failed", 10)
        return cell, self._storage_notice(view)

    def worker_died(self, event: proto.WorkerDied) -> View:
        if self.recorder is not None:
            self.recorder.handle(event)
        reason = event.reason or "unknown reason"
        return (View().note(f"the worker died: {reason}; restarting it and going on", "error",
                            "worker crashed", 10)
                .log("error", f"worker died: {reason}"))

    def worker_restarted(self, event: proto.WorkerRestarted) -> View:
        if self.recorder is not None and self.running:  # not a restart asked for between sweeps
            self.recorder.handle(event)
        return (View().log("info", f"worker restarted (pid {event.pid}, restarts {event.restarts})")
                .note(f"worker restarted (pid {event.pid})", title="worker", timeout=4))

    def request_failed(self, event: proto.RequestFailed) -> View:
        return (View().note(event.reason, "error", "the worker refused the sweep", 10)
                .log("error", f"the worker refused the sweep: {event.reason}"))

    def sweep_finished(self, event: proto.SweepFinished) -> View:
        """The sweep ended; the session's record stays open until :meth:`close`."""
        self.running = False
        status = "cancelled" if event.cancelled else "complete"
        if self.recorder is not None:
            self.recorder.handle(event)
            n_failed = sum(c.status == "failed" for c in self.recorder.session.cells)
            if n_failed:
                status += f" ({n_failed} cell{'s' if n_failed != 1 else ''} failed)"
        return (View(now=f"sweep {status}").log("info", f"■ sweep {status}")
                .note(f"sweep {status}", "warning" if event.cancelled else "information", timeout=4))

    def close(self, status: str | None = None) -> View:
        """End the session's record: NVML samples attached, journal footer written."""
        if self.recorder is not None:
            self.recorder.close(status)
        return self._storage_notice(View())

    def _storage_notice(self, view: View) -> View:
        """A full disk or read-only data dir moved the session: say where, once."""
        notice = self.recorder.storage_notice() if self.recorder is not None else None
        if notice:
            view.note(notice, "warning", "storage", 12)
        return view

    # -------------------------------------------------------------- views
    def progress(self, final: bool = False) -> tuple[int, int | None, str]:
        """(done, total or None, the progress line)."""
        elapsed = self.clock() - self.started_s if self.started_s else 0.0
        text = present.progress_text(self.done, self.total, elapsed)
        if final and self.done < self.total:
            text = f"{self.done}/{self.total} cells · stopped after {fmt_clock(elapsed)}"
        return self.done, self.total or None, text

    def cell_dicts(self) -> tuple[dict[str, Any], ...]:
        """The session's cells as dicts for the tables (cached; speedups refreshed)."""
        if self.session is None:
            return ()
        out = []
        for cell in self.session.cells:
            data = self._dict_cache.get(cell.key)
            if data is None or data.get("_cell") is not cell:
                data = cell.to_dict()
                data["_cell"] = cell
                self._dict_cache[cell.key] = data
            data["speedup_vs_standard"] = cell.speedup_vs_standard  # derived, may change
            out.append(data)
        return tuple(out)


# ----------------------------------------------------------------------- py-spy
@dataclass(frozen=True)
class RecordStep:
    """What pressing the record key does: ``start`` (on ``pid``), ``stop``, or nothing
    but a note (``start`` and ``stop`` False)."""

    start: bool = False
    stop: bool = False
    pid: int | None = None
    note: Note | None = None
    why: str = ""


class PySpyController:
    """The py-spy panel's sampling switch and the ``py-spy record`` state machine.

    ``state``: None (idle) -> "starting" (attaching) -> "recording" -> "stopping"
    (writing the profile) -> None. While not idle, recorded cells carry the py-spy mark
    (the app forwards :attr:`marking` to the sweep controller).
    """

    def __init__(self, record_cells: int = RECORD_CELLS) -> None:
        self.record_cells = record_cells
        self.fatal: str | None = None  # py-spy cannot be used (until the next sweep)
        self.state: str | None = None
        self.recording: Any | None = None  # monitor.pyspy's handle while attached
        self.cells: list[str] = []
        self.cells_left = 0
        self.details: dict[str, Any] = {}
        # The session's record closes after the profile is attached to it.
        self.close_after = False

    @property
    def marking(self) -> bool:
        return self.state is not None

    def sweep_starting(self) -> None:
        self.fatal = None  # py-spy gets one more try per sweep

    def sampling_wanted(self, *, visible: bool, sweep_running: bool) -> bool:
        """Sample frames only while a sweep runs, the py-spy tab shows and nothing records."""
        return visible and sweep_running and self.fatal is None and self.state is None

    def frames_failed(self, reason: str, fatal: bool) -> None:
        if fatal:
            self.fatal = reason

    def toggle(self, *, sweep_running: bool, has_session: bool, pid: int | None,
               pyspy_found: bool, install_hint: str) -> RecordStep:
        """The record key: start a recording, stop the one running, or say why not."""
        if self.state == "recording":
            return RecordStep(stop=True, why="stopped by you")
        if self.state is not None:
            return RecordStep(note=Note(f"py-spy record is {self.state}; a moment", timeout=3))
        if not sweep_running or not has_session or pid is None:
            return RecordStep(note=Note(f"start a sweep first: a recording covers its next "
                                        f"{self.record_cells} cells", "warning", "py-spy"))
        if not pyspy_found:
            return RecordStep(note=Note(install_hint, "warning", "py-spy"))
        return RecordStep(start=True, pid=pid)

    def starting(self, pid: int) -> str:
        """A recording is being attached to ``pid``; the panel's record line."""
        self.state = "starting"
        self.cells = []
        self.cells_left = self.record_cells
        self.details = {"pid": pid}
        return f"● starting py-spy record on pid {pid}…"

    def started(self, path: str, recording: Any) -> tuple[str, View]:
        """py-spy is attached: the panel's record line and the log."""
        self.recording = recording
        self.state = "recording"
        self.details["started_at"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        line = f"● recording → {path} (p stops; stops after {self.cells_left} cells)"
        return line, View().log("info", f"py-spy record started → {path} (timings of these cells "
                                        "include py-spy's sampling pauses)")

    def cell_recorded(self, cell: Cell) -> str | None:
        """Count a cell timed under the recording; the reason to stop now, if any."""
        if self.state != "recording":
            return None
        self.cells.append(cell.key.label())
        self.cells_left -= 1
        return f"after {len(self.cells)} cells" if self.cells_left <= 0 else None

    def stop(self, why: str) -> tuple[Any, dict[str, Any]] | None:
        """Stop the recording: (its handle, the profile's details), None when not attached."""
        recording, self.recording = self.recording, None
        if recording is None:
            return None
        self.state = "stopping"
        return recording, {**self.details, "cells": list(self.cells), "stopped": why}

    def stopped(self, path: str, summary: dict[str, Any], details: dict[str, Any]) -> tuple[str, View]:
        """The profile is written: the line for the panel, the log and a note."""
        self.state = None
        text = (f"profile saved: {path} ({summary.get('n_samples', 'NA')} samples, "
                f"{len(details.get('cells') or [])} cells; open it in speedscope.app)")
        return text, View().log("info", text).note(text, title="py-spy", timeout=8)

    def failed(self, reason: str) -> tuple[str, View]:
        self.state = None
        self.recording = None
        return f"✗ {reason}", (View().log("error", f"py-spy record: {reason}")
                               .note(reason, "error", "py-spy record", 10))

    def take_close_after(self, sweep_running: bool) -> bool:
        """Whether the session's record should close now (a recording just ended after
        its sweep finished)."""
        if self.close_after and not sweep_running and self.state is None:
            self.close_after = False
            return True
        return False


# ----------------------------------------------------------------------- doctor
class DoctorController:
    """The doctor's report, NVML's state and the probe in flight; the screen reads them.

    ``cache`` (a client.doctor_cache.DoctorCache, or None for a worker that is not this
    machine's, e.g. a scripted one): a first visit answers from it while the environment
    is unchanged, and a finished probe is stored in it, the same file ``flashtui doctor``
    uses. While a probe runs, :attr:`cells` holds the matrix cells finished so far.
    """

    def __init__(self, pyspy_state: Callable[[], dict[str, Any]] = pyspy_state,
                 clock: Callable[[], float] = time.monotonic, cache: Any | None = None,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.pyspy_state = pyspy_state
        self.clock = clock
        self.wall_clock = wall_clock
        self.cache = cache
        self.ready: proto.WorkerReady | None = None
        self.report: dict[str, Any] | None = None  # build_report's object, once probed
        self.nvml: dict[str, Any] | None = None
        self.probe_running = False
        self._probe_started_s = 0.0
        self.cells: list[dict[str, Any]] = []  # matrix cells of the probe in flight
        self.n_cells = 0
        self._changes: list[str] = []  # why the cache did not answer (for the report)
        self.status: tuple[str, str] | None = None  # the screen's status line and its state

    def preview(self) -> dict[str, Any]:
        """A report with the environment only (before or without a probe)."""
        from flashtui.reports.doctor import build_report

        return build_report(self.ready.fields() if self.ready else {}, {}, self.nvml or {},
                            self.pyspy_state())

    # ------------------------------------------------------------ the cache
    def lookup_cache(self) -> Any | None:
        """The cache's Lookup (blocking for milliseconds: run it off the UI thread); None
        without a cache or when reading it failed (then the probe runs)."""
        if self.cache is None:
            return None
        try:
            return self.cache.lookup()
        except Exception:  # noqa: BLE001 - no cache is no answer, never a crash
            return None

    def answer_from_cache(self, lookup: Any | None) -> str | None:
        """Take the cached answer when it holds: the status line ('cached 3 min ago, r
        probes again'); None when the probe must run (no entry, or a probe already ran)."""
        from flashtui.client.doctor_cache import cached_provenance
        from flashtui.reports.doctor import build_report, render_cache_line

        if lookup is None or self.report is not None or self.probe_running:
            return None
        if lookup.entry is None:
            self._changes = list(lookup.changes)
            return None
        self.report = build_report(lookup.entry["ready"], lookup.entry["probe"], self.nvml or {},
                                   self.pyspy_state(), cache=cached_provenance(lookup))
        return render_cache_line(self.report, again="r")

    # ------------------------------------------------------------ the probe
    def refusal(self, *, has_worker: bool, sweep_running: bool,
                busy_with: str | None) -> tuple[str, Note | None] | None:
        """Why the probe cannot run now: (the status line, a note), or None."""
        if not has_worker:
            return "probe not run: no worker (the app was started without one)", None
        if self.probe_running:
            return "", Note("the probe is already running", timeout=3)
        if sweep_running or busy_with is not None:
            what = busy_with or "sweep"
            return (f"probe not run: a {what} is running (r when it is done)",
                    Note(f"a {what} is running: the probe shares its worker; press r on the "
                         "Doctor screen when it is done", "warning", "doctor", 6))
        return None

    def probe_started(self) -> str:
        self.probe_running = True
        self._probe_started_s = self.clock()
        self.cells = []
        self.n_cells = 0
        return "probing: starting…"

    def probe_progress(self, text: str) -> str:
        elapsed = self.clock() - self._probe_started_s
        return f"probing: {text} ({fmt_clock(elapsed)})"

    def probe_cell(self, event: proto.ProbeCellFinished) -> tuple[str, dict[str, Any]]:
        """One matrix cell finished: ('5/81 cells probed', the matrix so far; unprobed
        cells show NA)."""
        self.cells.append(dict(event.cell))
        self.n_cells = max(self.n_cells, int(event.n_cells or 0))
        return self.partial()

    def partial(self) -> tuple[str, dict[str, Any]]:
        """'5/81 cells probed' and a matrix of the cells finished so far."""
        from flashtui.reports.doctor import partial_matrix

        names = list(self.ready.backends) if self.ready is not None else []
        names += [n for n in dict.fromkeys(c["backend"] for c in self.cells) if n not in names]
        return f"{len(self.cells)}/{self.n_cells or '?'} cells probed", partial_matrix(self.cells, names)

    def probe_finished(self, event: proto.ProbeFinished, ready: proto.WorkerReady,
                       seconds: float) -> str:
        """Build the report (NVML's state must be known: see nvml_probed) and cache it."""
        from flashtui.reports.doctor import build_report, render_cache_line

        self.probe_running = False
        self.ready = self.ready or ready
        probed_at_unix = self.wall_clock()
        cache: dict[str, Any] = {"cached": False, "cached_age_s": None, "probed_at_unix": probed_at_unix,
                                 "changes": self._changes}
        if self.cache is not None:  # the next first visit (or flashtui doctor) answers from it
            try:
                error = self.cache.save(ready.fields(), event.result, probed_at_unix)
            except Exception as exc:  # noqa: BLE001 - the answer stands without a cache
                error = f"cannot write the doctor cache: {exc}"
            cache["path"] = str(self.cache.path) if self.cache.path else None
            if error:
                cache["write_error"] = error
        self._changes = []
        self.cells = []
        self.report = build_report(ready.fields(), event.result, self.nvml or {}, self.pyspy_state(),
                                   cache=cache)
        why = render_cache_line(self.report, again="r")
        return f"probe finished in {fmt_clock(seconds)} (r probes again)" + (f"; {why}" if why else "")

    def probe_failed(self, reason: str) -> tuple[str, Note]:
        self.probe_running = False
        return (f"probe failed: {reason} (r tries again)",
                Note(f"probe failed: {reason}", "error", "doctor", 10))

    def nvml_probed(self, state: dict[str, Any]) -> None:
        self.nvml = state
