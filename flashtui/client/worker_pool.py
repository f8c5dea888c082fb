"""Several workers share one sweep: one per GPU (``--gpus``) or N on one device (``--workers``).

UI side, no torch. A :class:`WorkerPool` holds N :class:`WorkerClient` s and offers the
part of WorkerClient's interface a front end drives (``start``, ``plan``, ``run_sweep``,
``cancel``, ``kill``, ``close``, ``pid``, ``log_path``), so ``flashtui bench`` folds its
events into the ONE recorder exactly as it does a single worker's.

How the cells are shared out:

* The plan is cut into *units*: each (dtype, seq) group of the plan (every backend of one
  shape, the group the worker's fp64 oracle and inputs are built for once), or single
  cells when there are fewer groups than workers. Units wait in one shared queue.
* Each worker, in a thread of its own, takes the next unit, runs it as one ``RunSweep``
  (``WorkerClient.run_sweep`` with ``restart_on_death=False``) and comes back for more.
  (The cost, wall time only, never inside a timed region: single-cell units rebuild their
  group's inputs and fp64 oracle per cell, and in model mode each unit builds its model,
  which a plain run builds once per dtype.)
* Events are re-indexed into whole-sweep order: ``CellStarted.index`` is the cell's
  position in the plan; ``CellFinished`` events are held back and handed on in plan
  order, so the session (and its journal) lists the cells as a plain run does.
* Every cell gains ``extra.worker_pid`` and ``extra.device_index`` (the GPU's index
  among the GPUs this process sees, None on the CPU). A cell timed while another worker
  shared its device is marked ``extra.shared_device`` and ``noisy`` with a reason
  (:data:`SHARED_REASON`): it is shown with the ``~`` of noisy cells and kept out of
  findings and best-speedups, as every surface already does for noise.

A worker that dies (crash, SIGKILL, the cell watchdog): its cell in flight is marked
failed with the reason (as on a single worker), and the rest of its unit goes back to
the front of the queue for the others. It is **not restarted** while another worker is
still running: the others finish the sweep, and a GPU that just failed is not handed
more cells. Only the last worker standing is restarted (as a single worker is), so a
sweep never stops short because of one poisonous cell.
"""

from __future__ import annotations

import collections
import os
import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from flashtui.core.protocol import (
    CellFinished, CellStarted, Event, Log, RequestFailed, SweepFinished, SweepStarted, WorkerDied,
    WorkerReady, WorkerRestarted,
)
from flashtui.core.spec import CellKey, SpecError, SweepSpec
from flashtui.errors import WorkerError, one_line

# The reason a shared-device cell carries (in noise_reason, ahead of any reason of its own).
SHARED_REASON = ("timed beside another flashtui worker on the same device ({where}, {n} workers): "
                 "the timings disturb each other")

_DONE = object()


def parse_gpus(text: str) -> tuple[int, ...] | None:
    """``--gpus``: 'all' (None: every GPU) or a comma list of distinct indices >= 0."""
    text = text.strip()
    if text.lower() == "all":
        return None
    indices: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            index = int(part)
        except ValueError:
            raise SpecError(f"--gpus takes 'all' or GPU indices such as 0,1; got {part!r}") from None
        if index < 0:
            raise SpecError(f"--gpus takes GPU indices >= 0, got {index}")
        if index in indices:
            raise SpecError(f"--gpus names GPU {index} twice")
        indices.append(index)
    if not indices:
        raise SpecError("--gpus needs 'all' or at least one GPU index")
    return tuple(indices)


def resolve_gpus(choice: tuple[int, ...] | None, ready: WorkerReady) -> list[int]:
    """The GPU indices to use, checked against what the first worker saw (one line if not)."""
    prov = ready.provenance
    if ready.device_kind != "cuda":
        why = prov.get("cuda_unavailable_reason") or "no CUDA device"
        raise SpecError(f"--gpus: there is no GPU here ({why}); use --workers N to share the CPU")
    count = int(prov.get("device_count") or 1)
    if choice is None:
        return list(range(count))
    missing = [i for i in choice if i >= count]
    if missing:
        have = "1 GPU (index 0)" if count == 1 else f"{count} GPUs (indices 0-{count - 1})"
        raise SpecError(f"--gpus {','.join(map(str, choice))}: there is no GPU {missing[0]}; this machine has {have}")
    return list(choice)


@dataclass(frozen=True)
class Slot:
    """Where one worker of the pool runs: a GPU index (None: the CPU) and its env overrides."""

    device_index: int | None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return "cpu" if self.device_index is None else f"gpu{self.device_index}"


def plan_slots(gpus: list[int] | None, workers_per_device: int,
               visible_devices: str | None = None, default_index: int | None = None) -> list[Slot]:
    """``workers_per_device`` workers on each GPU of ``gpus``.

    Each GPU worker is pinned with CUDA_VISIBLE_DEVICES; when this process already runs
    under a CUDA_VISIBLE_DEVICES list, index i means its i-th entry (as CUDA numbers them).
    ``gpus`` None: every worker on the sweep's one device, unpinned (``default_index``:
    0 for a CUDA sweep, None on the CPU), as a plain run's worker is.
    """
    if not gpus:
        return [Slot(default_index) for _ in range(workers_per_device)]
    visible = [v.strip() for v in visible_devices.split(",")] if visible_devices else None
    slots = []
    for index in gpus:
        pinned = visible[index] if visible and index < len(visible) else str(index)
        slots += [Slot(index, {"CUDA_VISIBLE_DEVICES": pinned}) for _ in range(workers_per_device)]
    return slots


def work_units(plan: list[CellKey], n_workers: int) -> list[list[CellKey]]:
    """The plan cut into (dtype, seq) groups, in order; single cells if groups < workers."""
    groups: list[list[CellKey]] = []
    for key in plan:
        if groups and (groups[-1][0].dtype, groups[-1][0].seq) == (key.dtype, key.seq):
            groups[-1].append(key)
        else:
            groups.append([key])
    if len(groups) < n_workers:
        return [[key] for key in plan]
    return groups


@dataclass
class SlotState:
    """What one worker is doing, for per-GPU progress lines."""

    slot: Slot
    pid: int | None = None
    current: CellKey | None = None
    done: int = 0
    state: str = "starting"  # starting | running | idle | retired | failed

    def to_dict(self) -> dict[str, Any]:
        return {"device_index": self.slot.device_index, "pid": self.pid, "cells": self.done,
                "state": self.state}


class WorkerPool:
    """N workers sharing one sweep's cells; see the module doc for the rules.

    ``clients[i]`` runs on ``slots[i]``. ``owned``: the pool closes these clients at the
    end (the TUI lends its own worker as the first and keeps it).
    """

    def __init__(self, clients: list[Any], slots: list[Slot], *, owned: list[bool] | None = None) -> None:
        if not clients or len(clients) != len(slots):
            raise ValueError("a pool needs one slot per client, and at least one")
        self.clients = clients
        self.slots = slots
        self.owned = list(owned) if owned is not None else [True] * len(clients)
        self.states = [SlotState(slot) for slot in slots]
        self.readies: list[WorkerReady | None] = [None] * len(clients)  # each worker's last WorkerReady
        per_device = collections.Counter(slot.device_index for slot in slots)
        self._sharing = {index: n for index, n in per_device.items() if n > 1}
        self._lock = threading.Lock()
        self._units: collections.deque[list[CellKey]] = collections.deque()
        self._stop = False
        self._cancelled = False
        self._active = 0
        self._out: queue.Queue[Any] = queue.Queue()
        self._threads: list[threading.Thread] = []
        # Finished cells waiting for an earlier one, by plan position (see take_unmerged).
        self._held: dict[int, CellFinished] = {}
        self._position: dict[CellKey, int] = {}
        self._closing = False

    # ---------------------------------------------------------- WorkerClient's face
    @property
    def pid(self) -> int | None:
        return self.clients[0].pid

    @property
    def ready(self) -> WorkerReady | None:
        return self.readies[0]

    @property
    def ready_wall_s(self) -> float | None:
        return self.clients[0].ready_wall_s

    @property
    def log_path(self) -> Any:
        return self.clients[0].log_path

    @property
    def restarts(self) -> int:
        return sum(int(c.restarts) for c in self.clients)

    @property
    def shared(self) -> bool:
        """Some device runs more than one worker: its cells are marked shared."""
        return bool(self._sharing)

    def start(self) -> WorkerReady:
        """Start every worker at once (they import torch in parallel); the first one's ready.

        One that cannot start fails the pool with its reason (exit 3): a sweep asked to
        use a GPU should not quietly run without it.
        """
        errors: list[tuple[int, BaseException]] = []

        def start_one(i: int) -> None:
            try:
                self.readies[i] = self.clients[i].start()
                self.states[i].pid = self.clients[i].pid
                self.states[i].state = "idle"
            except BaseException as exc:  # noqa: BLE001 - reported below, on the caller's thread
                errors.append((i, exc))

        threads = [threading.Thread(target=start_one, args=(i,), daemon=True, name=f"flashtui-pool-start-{i}")
                   for i in range(len(self.clients))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            i, exc = min(errors, key=lambda e: e[0])
            raise WorkerError(f"worker {i} ({self.slots[i].label}) could not start: {one_line(exc)}")
        ready = self.readies[0]
        assert ready is not None
        return ready

    def plan(self, spec: SweepSpec) -> list[CellKey]:
        ready = self.start()
        return spec.cells(ready.available(spec.device))

    def cancel(self) -> None:
        """Stop after the cells in flight (every worker). Safe from any thread."""
        with self._lock:
            self._stop = self._cancelled = True
            self._units.clear()
        for client in self.clients:
            client.cancel()

    def kill(self) -> None:
        with self._lock:
            self._stop = True
            self._units.clear()
        for client in self.clients:
            client.kill()

    def close(self, timeout_s: float | None = None) -> None:
        """Shut down the workers this pool owns (in parallel: each may take a grace period)."""
        with self._lock:
            self._stop = True  # a worker dying now is not restarted
            self._closing = True  # and what its death reports is not a result (see _put)
            self._units.clear()
        threads = [threading.Thread(target=c.close, kwargs={"timeout_s": timeout_s}, daemon=True)
                   for c, owned in zip(self.clients, self.owned) if owned]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def take_unmerged(self) -> list[CellFinished]:
        """After an interrupted sweep (Ctrl-C), the cells that finished but were not handed
        on: held back for an earlier one, or not yet read from the workers' threads. In plan
        order, each handed out once; nothing a worker reported after close() (its death)."""
        while True:
            try:
                i, payload = self._out.get_nowait()
            except queue.Empty:
                break
            if isinstance(payload, tuple) and isinstance(payload[1], CellFinished):
                pid, event = payload
                self._held[self._position.get(event.key, len(self._position) + len(self._held))] = \
                    self._tagged(event, i, pid)
        held, self._held = self._held, {}
        return [held[pos] for pos in sorted(held)]

    def status_line(self) -> str:
        """Per-device progress: 'gpu0 3 ▸ standard 1024 bf16 | gpu1 2 (died)'."""
        parts = []
        for i, st in enumerate(self.states):
            label = st.slot.label + (f"#{i}" if self.shared else "")
            text = f"{label} {st.done}"
            if st.state == "running" and st.current is not None:
                text += f" ▸ {st.current.label()}"
            elif st.state in ("retired", "failed"):
                text += f" ({'died' if st.state == 'retired' else 'stopped'})"
            parts.append(text)
        return " | ".join(parts)

    def summary(self) -> list[dict[str, Any]]:
        """Each worker's device (and which GPU that is, from its own provenance), last pid,
        cells finished and end state (session.worker['pool'])."""
        out = []
        for st, ready in zip(self.states, self.readies):
            prov = ready.provenance if ready is not None else {}
            seen = {k: prov.get(k) for k in ("device_name", "pci_bus_id", "cuda_visible_devices") if prov.get(k)}
            out.append({**st.to_dict(), **seen})
        return out

    # ------------------------------------------------------------------- the sweep
    def run_sweep(self, spec: SweepSpec, cells: list[CellKey] | None = None) -> Iterator[Event]:
        """Run the cells over every worker; yields one sweep's events, cells in plan order."""
        plan = list(cells) if cells is not None else self.plan(spec)
        position: dict[CellKey, int] = {}
        for i, key in enumerate(plan):
            position.setdefault(key, i)
        self._position = position
        with self._lock:
            self._units = collections.deque(work_units(plan, len(self.clients)))
            self._stop = self._cancelled = self._closing = False
            self._active = len(self.clients)
        self._out = queue.Queue()
        held = self._held = {}
        self._threads = [threading.Thread(target=self._serve, args=(i, spec), daemon=True,
                                          name=f"flashtui-pool-{i}") for i in range(len(self.clients))]
        for t in self._threads:
            t.start()
        yield SweepStarted(n_cells=len(plan))
        handed = 0  # CellFinished events handed on (their index)
        next_pos = 0  # the next plan position to hand on
        running = len(self.clients)
        errors: list[BaseException] = []
        try:
            while running:
                item = self._out.get()
                i, payload = item
                if payload is _DONE:
                    running -= 1
                    continue
                if isinstance(payload, BaseException):
                    errors.append(payload)
                    continue
                pid, event = payload
                if isinstance(event, CellStarted):
                    yield event.replace(index=position.get(event.key, event.index))
                elif isinstance(event, CellFinished):
                    held[position.get(event.key, len(plan) + len(held))] = self._tagged(event, i, pid)
                    while next_pos in held:
                        yield held.pop(next_pos).replace(index=handed)
                        handed += 1
                        next_pos += 1
                else:
                    yield event
            # Gaps are cells never run (cancelled, a refused sweep): hand on the rest in order.
            for pos in sorted(held):
                yield held.pop(pos).replace(index=handed)
                handed += 1
        finally:
            # Interrupted (Ctrl-C, the consumer stopped): stop the workers (take_unmerged
            # hands on what finished).
            if running:
                self.cancel()
        unrun = handed < len(plan)
        if errors and unrun and not self._cancelled:
            raise WorkerError(one_line(errors[0]))
        yield SweepFinished(cancelled=self._cancelled and unrun)

    def _tagged(self, event: CellFinished, i: int, pid: int | None) -> CellFinished:
        """The cell with its worker's pid and device, and the shared-device mark."""
        cell = dict(event.cell)
        extra = dict(cell.get("extra") or {})
        slot = self.slots[i]
        extra["worker_pid"] = pid
        extra["device_index"] = slot.device_index
        n = self._sharing.get(slot.device_index)
        if n:
            extra["shared_device"] = True
            if cell.get("status") == "ok" and cell.get("median_ms") is not None:
                where = "the CPU" if slot.device_index is None else f"GPU {slot.device_index}"
                reason = SHARED_REASON.format(where=where, n=n)
                own = cell.get("noise_reason") if cell.get("noisy") else None
                cell["noisy"] = True
                cell["noise_reason"] = reason + (f"; {own}" if own else "")
        cell["extra"] = extra
        return event.replace(cell=cell)

    def _put(self, i: int, event: Event) -> bool:
        """Hand ``event`` to run_sweep; False (dropped) once closing: a cell cut short by the
        shutdown is not a result (as on one worker)."""
        if self._closing:
            return False
        self._out.put((i, (self.clients[i].pid, event)))
        return True

    def _serve(self, i: int, spec: SweepSpec) -> None:
        """One worker's loop: take a unit, run it, come back; see the module doc on deaths."""
        client, st = self.clients[i], self.states[i]
        try:
            while True:
                with self._lock:
                    if self._stop or not self._units:
                        self._active -= 1
                        st.state, st.current = ("idle" if st.state != "failed" else st.state), None
                        return
                    unit = self._units.popleft()
                st.state = "running"
                ran: set[CellKey] = set()
                died = False
                try:
                    for event in client.run_sweep(spec, unit, restart_on_death=False):
                        if isinstance(event, (SweepStarted, SweepFinished)):
                            continue  # the pool announces one sweep of its own
                        if isinstance(event, CellStarted):
                            st.current, st.pid = event.key, client.pid
                            if self._cancelled:  # cancelled as this unit was being sent
                                client.cancel()
                        elif isinstance(event, CellFinished):
                            ran.add(event.key)
                            st.current = None
                        elif isinstance(event, WorkerDied):
                            died = True
                        elif isinstance(event, RequestFailed):
                            with self._lock:  # every worker would refuse the same sweep
                                self._stop = True
                                self._units.clear()
                        if self._put(i, event) and isinstance(event, CellFinished):
                            st.done += 1  # counts the cells handed on, as the session will
                except Exception as exc:  # noqa: BLE001 - this worker is out; the others go on
                    rest = [k for k in unit if k not in ran]
                    self._out.put((i, exc))
                    self._put(i, Log(level="error", text=f"worker {i} ({st.slot.label}) stopped: {one_line(exc)}"))
                    with self._lock:
                        if rest and not self._stop:
                            self._units.appendleft(rest)
                        self._active -= 1
                    st.state = "failed"
                    return
                if not died:
                    continue
                rest = [k for k in unit if k not in ran]
                with self._lock:
                    if rest and not self._stop:
                        self._units.appendleft(rest)
                    last_standing = self._active == 1 and bool(self._units) and not self._stop
                    if not last_standing:
                        self._active -= 1
                        st.state, st.current = "retired", None
                if not last_standing:
                    client.kill()  # already gone: close its pipes
                    self._put(i, Log(level="warning", text=(
                        f"worker {i} ({st.slot.label}) is not restarted: the other workers take its cells")))
                    return
                self.readies[i] = client.restart()
                st.pid = client.pid
                self._put(i, WorkerRestarted(pid=client.pid, restarts=client.restarts))
        except Exception as exc:  # noqa: BLE001 - a restart that failed: reported by run_sweep
            with self._lock:
                self._active -= 1
            st.state = "failed"
            self._out.put((i, exc))
        finally:
            self._out.put((i, _DONE))


def build_pool(make_client: Callable[[dict[str, str]], Any], slots: list[Slot], first: Any | None = None,
               *, first_owned: bool = True) -> WorkerPool:
    """A pool over ``slots``: ``make_client(env_overrides)`` builds each worker's client.

    ``first``: an already started client reused for ``slots[0]`` (it must run there).
    """
    clients = []
    for n, slot in enumerate(slots):
        if n == 0 and first is not None:
            clients.append(first)
        else:
            clients.append(make_client(dict(slot.env)))
    owned = [first_owned if (n == 0 and first is not None) else True for n in range(len(slots))]
    return WorkerPool(clients, slots, owned=owned)


def pool_for(first: Any, ready: WorkerReady, *, device: str, gpus: str | None, workers: int | None,
             make_client: Callable[[dict[str, str]], Any], first_owned: bool = True) -> WorkerPool:
    """The pool ``--gpus``/``--workers`` (or the TUI's GPUs field) ask for, not started.

    ``first`` is the worker already running (unpinned, on cuda:0 or the CPU); it is kept
    for the first slot when it runs there: GPU 0 (its cuda:0 is the device that
    CUDA_VISIBLE_DEVICES=0 pins), or the one device of a --workers run. Otherwise it sits
    the sweep out (closed first when the pool owns it). SpecError (one line) for a --gpus
    the first worker's WorkerReady says this machine cannot give.
    """
    chosen = resolve_gpus(parse_gpus(gpus), ready) if gpus is not None else None
    slots = plan_slots(chosen, workers or 1, os.environ.get("CUDA_VISIBLE_DEVICES"),
                       default_index=0 if device == "cuda" else None)
    reuse = slots[0].device_index in (None, 0)
    if not reuse and first_owned:
        first.close()
    return build_pool(make_client, slots, first=first if reuse else None, first_owned=first_owned)


def pinned_env(overrides: dict[str, str], base: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment with a slot's overrides (CUDA_VISIBLE_DEVICES)."""
    env = dict(os.environ if base is None else base)
    env.update(overrides)
    return env


__all__ = ["SHARED_REASON", "Slot", "SlotState", "WorkerPool", "build_pool", "parse_gpus", "pinned_env",
           "plan_slots", "pool_for", "resolve_gpus", "work_units"]
