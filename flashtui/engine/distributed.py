"""One rank of a sweep under torchrun: the process group, this rank's cells, the hand-over.

The CLI never imports torch, so torch.distributed lives here, in the worker. Each rank's
worker joins the group with ``init_method="env://"``: under torchrun that connects to the
launcher's own rendezvous store at MASTER_ADDR:MASTER_PORT as a client
(TORCHELASTIC_USE_AGENT_STORE), so nothing of flashtui binds that port. The backend is
``cpu:gloo,cuda:nccl`` for a GPU sweep (one NCCL all_reduce proves the device path at
join time) and ``gloo`` on the CPU; the cell hand-over goes over a gloo group of its own,
whose operations time out (``timeout_s``) and fail with a reason where NCCL's watchdog
would abort the process.

Hand-over: every rank but 0 sends each finished cell to rank 0 as it lands (so the wait
between two messages is one cell, and ``timeout_s`` bounds that, not the whole sweep);
rank 0 receives from each peer on a thread of its own while it measures and emits each
peer cell at once as an ordinary CellFinished (so its client records and journals it live,
and a later death of rank 0's worker loses only what had not arrived). A peer that dies
(connection closed) or falls silent for ``timeout_s`` costs only its own missing cells,
each recorded failed with why, after rank 0's own.
"""

from __future__ import annotations

import datetime
import os
import re
import socket
import threading
from typing import Any, Callable

import torch

from flashtui.core.distributed import CUDA_DEVICE_ENV, DEFAULT_TIMEOUT_S, RankInfo, owner, share
from flashtui.core.protocol import CellFinished, CellStarted, SweepFinished, SweepStarted
from flashtui.core.results import Cell
from flashtui.core.spec import CellKey, SpecError, SweepSpec
from flashtui.errors import EXIT_WORKER_POISONED


def pin_device_from_env() -> int | None:
    """Make cuda:N (``FLASHTUI_CUDA_DEVICE``, the CLI's LOCAL_RANK) current before the
    worker creates its CUDA context, so rank r never puts a context on rank 0's GPU.
    An index beyond the visible GPUs is left alone: a CUDA sweep then says why (join)."""
    text = os.environ.get(CUDA_DEVICE_ENV, "").strip()
    if not text.isdigit() or not torch.cuda.is_available():
        return None
    index = int(text)
    if index >= torch.cuda.device_count():
        return None
    torch.cuda.set_device(index)
    return index


def _one_line(exc: BaseException) -> str:
    """gloo's '[.../pair.cc:553] Connection closed by peer ...' without the source path."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return re.sub(r"^\[[^\]]*\.(cc|cpp|h):\d+\]\s*", "", text)


class RankGroup:
    """This worker's membership of the torchrun job."""

    def __init__(self, info: RankInfo, device_kind: str) -> None:
        self.info = info
        self.cuda = device_kind == "cuda"
        self.backend = "cpu:gloo,cuda:nccl" if self.cuda else "gloo"
        self.device_index: int | None = info.local_rank if self.cuda else None
        self.host = socket.gethostname()
        self.send_error: str | None = None
        self._received: set[int] = set()  # plan indices of peer cells already emitted
        self._errors: dict[int, str] = {}
        self._emit: Callable[[Any], None] | None = None  # None once the sweep's events ended
        self._emit_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._joined = False
        self._handover: Any = None  # the gloo group of the hand-over (its own timeout)

    # ---------------------------------------------------------------- joining
    def join(self) -> None:
        import torch.distributed as dist

        info = self.info
        if dist.is_initialized():
            raise SpecError("this worker already took part in a distributed sweep; start a fresh one")
        kwargs: dict[str, Any] = {}
        if self.cuda:
            visible = torch.cuda.device_count()
            if info.local_rank >= visible:
                raise SpecError(f"rank {info.rank}: LOCAL_RANK {info.local_rank} but {self.host} has "
                                f"{visible} GPU(s); start at most {visible} processes per node")
            torch.cuda.set_device(info.local_rank)
            kwargs["device_id"] = torch.device("cuda", info.local_rank)
        # env:// reads these (torchrun set them; the request carries the same values).
        os.environ["MASTER_ADDR"] = info.master_addr
        os.environ["MASTER_PORT"] = str(info.master_port)
        # Joining waits for the slowest rank's worker start: never less than the default,
        # whatever --dist-timeout says (that one bounds the wait for a rank's next cell).
        join_s = max(info.timeout_s, DEFAULT_TIMEOUT_S)
        try:
            dist.init_process_group(self.backend, init_method="env://", rank=info.rank,
                                    world_size=info.world_size,
                                    timeout=datetime.timedelta(seconds=join_s), **kwargs)
        except Exception as exc:  # noqa: BLE001 - one line for the user, whatever c10d raised
            raise SpecError(f"rank {info.rank} could not join the process group at "
                            f"{info.master_addr}:{info.master_port}: {_one_line(exc)}") from None
        self._joined = True

    def check_plan(self, spec: dict[str, Any], cells: list[CellKey]) -> None:
        """Every rank must plan the same sweep (same flags, same backends available):
        otherwise the shares overlap or miss cells. Also the first collective: a barrier."""
        import torch.distributed as dist

        mine = {"spec": spec, "cells": [k.to_list() for k in cells], "host": self.host}
        everyone: list[Any] = [None] * self.info.world_size
        dist.all_gather_object(everyone, mine)
        for rank, theirs in enumerate(everyone):
            if theirs["spec"] != spec or theirs["cells"] != mine["cells"]:
                what = "spec" if theirs["spec"] != spec else f"plan ({len(theirs['cells'])} cells, here {len(cells)})"
                raise SpecError(f"rank {rank} ({theirs['host']}) planned a different {what} than rank "
                                f"{self.info.rank} ({self.host}); run the same flashtui and flags on every node")
        if self.cuda:
            ones = torch.ones(1, device=torch.device("cuda", self.info.local_rank))
            dist.all_reduce(ones)  # over NCCL: the GPU path works before any cell is timed
            if int(ones.item()) != self.info.world_size:
                raise SpecError(f"NCCL all_reduce over {self.info.world_size} ranks gave {ones.item():g}")
        self._handover = dist.new_group(backend="gloo", timeout=datetime.timedelta(seconds=self.info.timeout_s))

    def annotate(self, cell: dict[str, Any]) -> dict[str, Any]:
        """Where a cell ran: rank, pid, device and host."""
        cell.setdefault("extra", {}).update(
            rank=self.info.rank, world_size=self.info.world_size, worker_pid=os.getpid(),
            device_index=self.device_index, host=self.host, dist_backend=self.backend)
        return cell

    # ------------------------------------------------------------ hand-over
    def send(self, message: dict[str, Any]) -> None:
        """To rank 0 (a cell, or the closing {"done": ...}); the first failure is kept, then sends stop."""
        import torch.distributed as dist

        if self.send_error is not None:
            return
        try:
            dist.send_object_list([message], dst=0, group=self._handover, device=torch.device("cpu"))
        except Exception as exc:  # noqa: BLE001 - rank 0 is gone or silent: say so once
            self.send_error = f"rank {self.info.rank} could not hand its cells to rank 0: {_one_line(exc)}"

    def start_receiving(self, emit: Callable[[Any], None]) -> None:
        """Rank 0: one thread per peer, emitting its cells until it says done."""
        self._emit = emit
        for rank in range(1, self.info.world_size):
            thread = threading.Thread(target=self._receive_from, args=(rank,),
                                      daemon=True, name=f"flashtui-rank-{rank}")
            thread.start()
            self._threads.append(thread)

    def _receive_from(self, rank: int) -> None:
        import torch.distributed as dist

        try:
            while True:
                box: list[Any] = [None]
                dist.recv_object_list(box, src=rank, group=self._handover, device=torch.device("cpu"))
                message = box[0]
                if message.get("done"):
                    if message.get("error"):
                        self._errors[rank] = str(message["error"])
                    return
                index = int(message["index"])
                with self._emit_lock:
                    if self._emit is not None and index not in self._received:
                        self._received.add(index)
                        self._emit(CellFinished(index=index, cell=message["cell"]))
        except Exception as exc:  # noqa: BLE001 - a dead or silent peer: its cells fail with this
            self._errors[rank] = f"no word from rank {rank} within {self.info.timeout_s:g} s or it died: {_one_line(exc)}"

    def collect(self, cells: list[CellKey]) -> list[tuple[int, dict[str, Any]]]:
        """Rank 0, after its own cells: wait for the peers; each cell that never came, failed."""
        for thread in self._threads:
            thread.join()
        self.stop_emitting()
        ranks = owner(cells, self.info.world_size)
        out = []
        for index, key in enumerate(cells):
            if ranks[index] == 0 or index in self._received:
                continue
            rank = ranks[index]
            why = self._errors.get(rank) or f"rank {rank} stopped before it ran this cell"
            data = Cell(key.backend, key.seq, key.dtype, status="failed", reason=why).to_dict()
            data["extra"] = {"rank": rank, "world_size": self.info.world_size}
            out.append((index, data))
        return out

    def stop_emitting(self) -> None:
        """No peer cell may follow the sweep's SweepFinished (a cancelled rank 0 ends early)."""
        with self._emit_lock:
            self._emit = None

    def close(self) -> None:
        """Leave the group, unless a receiver still blocks in it (a cancelled rank 0)."""
        import torch.distributed as dist

        if self._joined and not any(t.is_alive() for t in self._threads):
            try:
                dist.destroy_process_group()
            except Exception:  # noqa: BLE001 - leaving is best effort; the process ends soon
                pass
        self._joined = False


def run_sweep(worker: Any, spec: SweepSpec, cells: list[CellKey], device: Any, info: RankInfo) -> None:
    """Serve one RunSweep as rank ``info.rank`` (``worker`` is the engine.server.Worker)."""
    from flashtui.engine.memory import is_poisoned

    group = RankGroup(info, device.kind)
    group.join()
    poisoned: str | None = None
    try:
        group.check_plan(spec.to_dict(), cells)
        mine = share(cells, info.rank, info.world_size)
        worker.emit(SweepStarted(n_cells=len(cells)))
        if info.is_leader:
            group.start_receiving(worker.emit)
        cancelled = False
        runner = None
        try:
            runner = worker._runner(spec, device)
            runner.pay_start_up()
            for index in mine:
                key = cells[index]
                if worker.cancel.is_set():
                    cancelled = True
                    break
                if poisoned is not None:
                    cell = Cell(key.backend, key.seq, key.dtype, status="failed", reason=f"not run: {poisoned}")
                else:
                    worker.emit(CellStarted(index=index, backend=key.backend, seq=key.seq, dtype=key.dtype))
                    cell = runner.run_cell(key)
                    if cell.status == "failed" and is_poisoned(cell.reason):
                        # No exit yet (unlike a one-worker sweep): the other ranks wait on this
                        # rank's cells, so the rest of its share is reported, then it exits.
                        poisoned = f"rank {info.rank}'s CUDA context was poisoned by {key.label()} ({cell.reason})"
                        worker.log("error", poisoned)
                data = group.annotate(cell.to_dict())
                worker.emit(CellFinished(index=index, cell=data))
                if not info.is_leader:
                    group.send({"index": index, "cell": data})
        except BaseException as exc:
            if not info.is_leader:  # rank 0 learns why this rank's cells stop here
                group.send({"done": True, "error": f"rank {info.rank} stopped: {_one_line(exc)}"})
            raise
        finally:
            if runner is not None:
                runner.release()
        if info.is_leader:
            if not cancelled:
                for index, data in group.collect(cells):
                    worker.emit(CellFinished(index=index, cell=data))
            group.stop_emitting()
        else:
            group.send({"done": True, "error": f"rank {info.rank} was cancelled first" if cancelled else None})
            if group.send_error is not None:
                raise SpecError(group.send_error)
        worker.emit(SweepFinished(cancelled=cancelled))
    finally:
        group.stop_emitting()
        group.close()
    if poisoned is not None:
        os._exit(EXIT_WORKER_POISONED)
