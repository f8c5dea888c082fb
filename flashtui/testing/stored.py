"""Sessions written into the store (FLASHTUI_DATA_DIR) the way a sweep journals them.

Fixed ids and dates so the Sessions screen reads the same every run (snapshots), and
one planted regression: sdpa-flash seq=128 is 1.5x slower in B than in baseline A.
"""

from __future__ import annotations

from flashtui.core.results import Cell, Parity
from flashtui.core.session import Session
from flashtui.store.index import open_journal, sessions_dir

A_ID = "20250101-120000-aaaaaa"
B_ID = "20250102-120000-bbbbbb"
CORRUPT_ID = "20250103-120000-cccccc"
REGRESSED = ("sdpa-flash", 128, "fp32")
SPEC = {"mode": "kernel", "device": "cpu", "seqs": [64, 128], "dtypes": ["fp32"], "heads": 2,
        "head_dim": 32, "batch": 1}
PROVENANCE = {"device_kind": "cpu", "device_name": "Test CPU", "torch": "2.13.0+cpu"}


def _cells(slow_factor: float) -> list[Cell]:
    cells = []
    for backend, factor in (("standard", 1.0), ("sdpa-math", 0.9), ("sdpa-flash", 0.3)):
        for seq in (64, 128):
            median_ms = 0.001 * seq * factor
            if (backend, seq, "fp32") == REGRESSED:
                median_ms *= slow_factor
            cells.append(Cell(backend, seq, "fp32", median_ms=median_ms, iqr_ms=median_ms * 0.05,
                              reps=3, theory_bytes=seq * seq * 16,
                              parity=Parity(rel_l2=1.8e-7, max_abs=5e-7, mean_abs=4e-8,
                                            standard_rel_l2=1.8e-7, ratio_vs_standard=1.0,
                                            passed=True)))
    return cells


def write_session(session_id: str, created_at: str, slow_factor: float) -> Session:
    """Journal a complete session like the app does: header, one cell at a time, footer."""
    session = Session(spec=dict(SPEC), provenance=dict(PROVENANCE), id=session_id, created_at=created_at)
    journal = open_journal(session, fsync=False)
    for cell in _cells(slow_factor):
        session.add_cell(cell)
        journal.append_cell(cell)
    session.finish("complete")
    session.finished_at = created_at
    journal.finish(session)
    return session


def write_store(corrupt: bool = True) -> None:
    """Baseline A, B with the planted regression, and (optionally) a corrupt journal."""
    write_session(A_ID, "2025-01-01T12:00:00+00:00", 1.0)
    write_session(B_ID, "2025-01-02T12:00:00+00:00", 1.5)
    if corrupt:
        (sessions_dir() / f"{CORRUPT_ID}.jsonl").write_text("this is not json\n")
