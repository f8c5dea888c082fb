"""Client side of one rank under torchrun: its worker's environment and its event stream.

No torch here: the process group is the worker's (flashtui.engine.distributed). Each
rank's CLI starts its usual worker with torchrun's variables passed through, plus
``FLASHTUI_CUDA_DEVICE`` so the worker's CUDA context is on cuda:LOCAL_RANK from the start.
"""

from __future__ import annotations

import os
from typing import Iterator, Mapping

from flashtui.client.worker_client import WorkerClient
from flashtui.core.distributed import CUDA_DEVICE_ENV, RankInfo
from flashtui.core.protocol import CellFinished, Event, SweepFinished, WorkerDied
from flashtui.core.results import Cell
from flashtui.core.spec import CellKey, SweepSpec


def worker_env(info: RankInfo, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The worker's environment: this process's (torchrun's variables included), pinned."""
    env = dict(os.environ if base is None else base)
    env[CUDA_DEVICE_ENV] = str(info.local_rank)
    return env


def rank_events(client: WorkerClient, spec: SweepSpec, cells: list[CellKey], info: RankInfo) -> Iterator[Event]:
    """``client.run_sweep`` as rank ``info.rank``.

    On rank 0 the session must hold every planned cell exactly once: when its worker died
    before the hand-over ended, each cell that never came back is added, failed, with the
    reason, before the closing SweepFinished (a cancelled sweep stays partial, as ever).
    """
    seen: set[CellKey] = set()
    died: str | None = None
    for event in client.run_sweep(spec, cells, distributed=info.to_request()):
        if isinstance(event, CellFinished):
            seen.add(event.key)
        elif isinstance(event, WorkerDied):
            died = event.reason
        elif isinstance(event, SweepFinished) and info.is_leader and not event.cancelled:
            why = f"rank 0's worker died before this cell was gathered ({died})" if died else \
                "the sweep ended before this cell was gathered"
            for key in cells:
                if key not in seen:
                    seen.add(key)
                    failed = Cell(key.backend, key.seq, key.dtype, status="failed", reason=why)
                    yield CellFinished(index=len(seen) - 1, cell=failed.to_dict())
        yield event
