"""`flashtui bench --distributed`: one rank of a sweep started by torchrun.

``torchrun --nproc-per-node N -m flashtui bench --distributed ...`` starts N CLI processes
(and across nodes, as many per node; torchrun's own rendezvous joins them). Each starts
its usual worker, which joins the process group and runs its share of the plan (whole
(dtype, seq) groups, round-robin: core.distributed.share). Rank 0 owns the session: its
worker hands it every other rank's cells, and it records, prints and journals them
through the one recorder like any sweep. The other ranks print one summary line on
stderr (stdout stays rank 0's table or JSON) and write no session.

Exit codes, chosen for torchrun, which stops every rank as soon as one exits non-zero:
a rank other than 0 fails (2 or 3) only before its sweep began (nothing to lose, and the
others would wait for it); once its cells are in rank 0's hands it exits 0, and rank 0's
exit code speaks for the run (1 when any cell, on any rank, failed).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any, Callable

from flashtui.client.distributed import rank_events, worker_env
from flashtui.client.recorder import SweepRecorder
from flashtui.client.worker_client import WorkerClient
from flashtui.core import protocol as proto
from flashtui.core.distributed import DEFAULT_TIMEOUT_S, RankInfo, from_env, share
from flashtui.core.spec import CellKey, SpecError, SweepSpec
from flashtui.errors import UsageError, WorkerError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("under torchrun")
    group.add_argument("--distributed", action="store_true",
                       help="one rank of `torchrun --nproc-per-node N -m flashtui bench --distributed ...`: "
                            "cells are shared across ranks, rank 0 writes the session")
    group.add_argument("--dist-timeout", type=float, metavar="S",
                       help=f"seconds rank 0 waits for another rank's next cell before it records that "
                            f"rank's missing cells failed (default {DEFAULT_TIMEOUT_S:g}); joining waits "
                            "at least the default")


def from_args(args: argparse.Namespace) -> RankInfo | None:
    """This process's rank (None without --distributed); a UsageError without torchrun's env."""
    timeout_s = getattr(args, "dist_timeout", None)
    if not getattr(args, "distributed", False):
        if timeout_s is not None:
            raise UsageError("--dist-timeout needs --distributed")
        return None
    if timeout_s is not None and not 0 < timeout_s < float("inf"):
        raise UsageError(f"--dist-timeout must be a number of seconds > 0, got {timeout_s:g}")
    return from_env(os.environ, timeout_s or DEFAULT_TIMEOUT_S)


def begin(recorder: SweepRecorder, cells: list[CellKey], info: RankInfo, note: Any) -> None:
    """Rank 0, once its session exists: say how the cells are shared; make SIGTERM a cancel.

    torchrun stops the other ranks with SIGTERM when one fails: the finally paths then
    still close the journal (cancelled) instead of leaving it without a footer.
    """
    counts = [len(share(cells, rank, info.world_size)) for rank in range(info.world_size)]
    recorder.session.provenance = {**recorder.session.provenance, "distributed": {
        "launcher": "torchrun", "world_size": info.world_size, "cells_per_rank": counts}}
    note(f"distributed: {info.world_size} rank(s); rank 0 runs {counts[0]} of {len(cells)} cells, "
         "the other ranks' cells are recorded as each is handed over")

    def _cancel(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise KeyboardInterrupt()

    try:
        signal.signal(signal.SIGTERM, _cancel)
    except ValueError:  # not the main thread
        pass


def run_rank(args: argparse.Namespace, info: RankInfo,
             spec_from_args: Callable[[argparse.Namespace, bool], SweepSpec],
             check_args: Callable[[argparse.Namespace], None]) -> int:
    """A rank other than 0: run its share, hand it over (the worker does), one line, exit.

    ``spec_from_args`` and ``check_args`` are bench's (passed in: this module must not
    import bench back). --out and --profile are rank 0's to write: not checked here, where
    their folder may not even exist (another node)."""
    check_args(argparse.Namespace(**{**vars(args), "out": None, "profile": None}))
    client = WorkerClient(cell_timeout_s=args.cell_timeout, env=worker_env(info))
    started = False
    statuses: dict[str, int] = {}
    died: str | None = None
    try:
        ready = client.start()
        cuda_present = ready.device_kind == "cuda"
        if args.device == "cuda" and not cuda_present:
            raise SpecError(f"--device cuda but {ready.provenance.get('cuda_unavailable_reason', 'no CUDA device')}; "
                            "use --device cpu")
        spec = spec_from_args(args, cuda_present)
        cells = spec.cells(ready.available(spec.device))
        for msg in rank_events(client, spec, cells, info):
            if isinstance(msg, proto.SweepStarted):
                started = True
            elif isinstance(msg, proto.CellFinished):
                status = str(msg.cell.get("status"))
                statuses[status] = statuses.get(status, 0) + 1
            elif isinstance(msg, proto.WorkerDied):
                died = msg.reason
            elif isinstance(msg, proto.RequestFailed):
                if not started:  # refused the sweep (bad spec, plans differ, cannot join)
                    raise SpecError(msg.reason)
                raise WorkerError(msg.reason)
            elif isinstance(msg, proto.Log) and msg.level in ("warning", "error") and not args.quiet:
                text = msg.text.strip().splitlines()
                _say(info, f"worker {msg.level}: {text[-1] if text else ''}")
    finally:
        client.close()
    ran = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items())) or "none"
    where = f"{ready.provenance.get('hostname', '?')} pid {ready.pid}, {spec.device}"
    if spec.device == "cuda":
        where += f":{info.local_rank}"
    tail = f"; its worker died: {died}" if died else ""
    _say(info, f"ran {sum(statuses.values())} of the sweep's {len(cells)} cells ({ran}) on {where}{tail}; "
               "rank 0 records the session")
    return 0


def _say(info: RankInfo, text: str) -> None:
    sys.stderr.write(f"flashtui: rank {info.rank}/{info.world_size}: {text}\n")
    sys.stderr.flush()
