"""Fold a sweep's events into a Session, journal each cell, and attach NVML telemetry.

Client side (no torch). `flashtui bench` and the TUI share it so a sweep is recorded
the same way wherever it runs: every finished cell is journaled (flushed and fsync'd)
before anything else happens to it, the clocks and power the NVML sampler saw during
the cell's timed region go into ``cell.telemetry``, and the sampler's samples into the
session's attachments at the end.
"""

from __future__ import annotations

from typing import Any

from flashtui.store.journal import SessionJournal
from flashtui.monitor.nvml import NvmlSampler, device_hint_from_provenance
from flashtui.core.protocol import CellFinished, Event, SweepFinished, WorkerRestarted
from flashtui.core.results import Cell
from flashtui.core.session import Session

# Samples kept in the session (at 10 Hz: ~16 minutes); older ones are thinned, not lost silently.
MAX_SAMPLES_KEPT = 10_000


class SweepRecorder:
    """One sweep's record: session + journal + optional NVML sampler."""

    def __init__(self, session: Session, journal: SessionJournal | None = None,
                 sampler: NvmlSampler | None = None, cell_marks: dict[str, Any] | None = None) -> None:
        self.session = session
        self.journal = journal
        self.sampler = sampler
        # Set on every cell's extra (e.g. timed_under_pyspy_record for `bench --profile`).
        self.cell_marks = dict(cell_marks or {})

    @classmethod
    def start_monitor(cls, provenance: dict[str, Any], pid: int | None, rate_hz: float) -> NvmlSampler | None:
        """An NVML sampler on the worker's GPU (None on a CPU run)."""
        if provenance.get("device_kind") != "cuda" or rate_hz <= 0:
            return None
        sampler = NvmlSampler(rate_hz=rate_hz, pid=pid, **device_hint_from_provenance(provenance))
        sampler.start()
        return sampler

    def handle(self, msg: Event) -> Cell | None:
        """Apply one event; returns the finished Cell for CellFinished events."""
        if isinstance(msg, CellFinished):
            cell = msg.to_cell()
            cell.extra.update(self.cell_marks)
            self._attach_telemetry(cell)
            self.session.add_cell(cell)
            if self.journal is not None:
                self.journal.append_cell(cell)
            return cell
        if isinstance(msg, WorkerRestarted):
            self.session.worker["restarts"] = msg.restarts
            if self.sampler is not None:
                self.sampler.watch_pid(msg.pid)
        elif isinstance(msg, SweepFinished):
            self.session.finish("cancelled" if msg.cancelled else "complete")
        return None

    def _attach_telemetry(self, cell: Cell) -> None:
        if self.sampler is None:
            return
        t0, t1 = cell.extra.get("t_start_wall_s"), cell.extra.get("t_end_wall_s")
        if t0 and t1:
            cell.telemetry = self.sampler.window(t0, t1, clock="wall")

    def close(self, status: str | None = None) -> None:
        """Stop the sampler, attach its samples, and write the journal footer."""
        if status is not None and self.session.status == "running":
            self.session.finish(status)
        if self.sampler is not None:
            self.sampler.stop()
            samples = [s.to_dict() for s in self.sampler.samples()]
            if len(samples) > MAX_SAMPLES_KEPT:
                step = -(-len(samples) // MAX_SAMPLES_KEPT)
                samples = samples[::step]
            self.session.attachments["nvml"] = {
                "status": self.sampler.status.to_dict(),
                "rate_hz": self.sampler.rate_hz,
                "stats": self.sampler.stats(),
                "samples": samples,
            }
        if self.journal is not None:
            self.journal.finish(self.session)
