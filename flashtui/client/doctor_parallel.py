"""The doctor's probe over several workers: the slow backends' first-use costs overlap.

Measured on the H200 (cold caches, one worker): sdpa's bf16 cells pick cuDNN, whose first
use loads for ~9 s; flex compiles for ~9 s; fa4 imports and compiles for ~8.5 s; the
rest take ~3 s; in a row, with the worker's start, that is most of a 49 s doctor. Each of
those first-use costs is per process, so on a GPU box each slow group gets a worker of its
own and all probe at once: the matrix and variant rows are correctness checks (tiny
kernels against fp64), not timings, so sharing the GPU changes no answer. The "fastest
here" timing is a timing: it runs afterwards one worker at a time, the others idle.

Groups: ``HELPER_GROUPS`` on a GPU box (fa4's only when flash-attn-4 is installed), none
on the CPU or with ``--device cpu``/``--serial``. ``FLASHTUI_DOCTOR_GROUPS`` overrides
them ("sdpa-math;sdpa-flash,sdpa-efficient": two helpers; "": none), for tests and for
boxes where a GPU context per helper is too much. A helper that cannot start leaves its
backends to the main worker. The merged answer is what one worker would have given
(core.doctor_merge), plus ``workers``: who probed what.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable

from flashtui.client.worker_client import WorkerClient
from flashtui.core.doctor_merge import merge_probes
from flashtui.core.protocol import Probe, ProbeFinished, WorkerReady

# The slow first uses, one worker each (see the module docstring).
HELPER_GROUPS: tuple[tuple[str, ...], ...] = (("sdpa", "sdpa-cudnn"), ("flex",), ("fa4",))
GROUPS_ENV = "FLASHTUI_DOCTOR_GROUPS"


def helper_groups(preview: dict[str, Any], device: str | None, serial: bool) -> list[tuple[str, ...]]:
    """The backend groups that get a worker of their own (empty: probe in one worker)."""
    forced = os.environ.get(GROUPS_ENV)
    if forced is not None:
        return [tuple(n.strip() for n in group.split(",") if n.strip())
                for group in forced.split(";") if group.strip()]
    if serial or device == "cpu" or not (preview.get("nvml") or {}).get("available") or not preview.get("gpus"):
        return []
    installed = preview.get("packages") or {}
    return [group for group in HELPER_GROUPS if group != ("fa4",) or installed.get("flash_attn_4")]


class Share:
    """One worker and the backends it answers for."""

    def __init__(self, client: WorkerClient, names: tuple[str, ...] | None) -> None:
        self.client = client
        self.names = names  # None: every backend (the main worker's share is set once it is ready)
        self.ready: WorkerReady | None = None
        self.error: BaseException | None = None
        self.result: dict[str, Any] | None = None
        self.fastest: dict[str, Any] | None = None

    def start(self) -> None:
        try:
            self.ready = self.client.start()
        except BaseException as exc:  # noqa: BLE001 - the caller decides (main: raise; helper: hand back)
            self.error = exc


def start_all(shares: list[Share]) -> None:
    """Start every worker at once (each imports torch for seconds); wait for all."""
    threads = [threading.Thread(target=s.start, daemon=True, name="flashtui-doctor-start") for s in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def assign(shares: list[Share], order: list[str]) -> list[Share]:
    """The shares that probe: helpers that started, and the main worker with the rest
    (what no running helper took, a failed helper's group included)."""
    main, helpers = shares[0], [s for s in shares[1:] if s.ready is not None]
    taken = {name for s in helpers for name in s.names or ()}
    main.names = tuple(name for name in order if name not in taken)
    return [main, *helpers]


def probe_all(shares: list[Share], full: bool, timeout_s: float,
              on_event: Callable[[Share, Any], None], prime: bool = False) -> None:
    """Each share probes its backends at once (matrix and variants; no timing); with
    ``prime``, each then compiles its backends at the "fastest here" shape, still at once."""
    errors: list[BaseException] = []

    def run(share: Share) -> None:
        try:
            reply = share.client.request(Probe(fastest=False, full=full, backends=list(share.names or ()),
                                               prime_fastest=prime),
                                         ProbeFinished, timeout_s=timeout_s,
                                         on_event=lambda event: on_event(share, event))
            share.result = reply.result
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,), daemon=True, name="flashtui-doctor-probe")
               for s in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def time_fastest(shares: list[Share], timeout_s: float) -> None:
    """"Fastest here", one worker at a time (the others idle): each times its own backends."""
    for share in shares:
        reply = share.client.request(Probe(only_fastest=True), ProbeFinished, timeout_s=timeout_s)
        share.fastest = reply.result.get("fastest")


def merged(shares: list[Share], order: list[str], seconds: float) -> dict[str, Any]:
    workers = [{"backends": list(s.names or ()), "pid": s.client.pid,
                "ready_s": s.ready.ready_s if s.ready else None} for s in shares]
    return merge_probes([s.result or {} for s in shares], order, [s.fastest for s in shares], seconds, workers)


def run_parallel(shares: list[Share], order: list[str], *, full: bool, fastest: bool, timeout_s: float,
                 on_event: Callable[[Share, Any], None]) -> dict[str, Any]:
    """Probe over ``shares`` (started, assigned); the merged result."""
    started = time.monotonic()
    probe_all(shares, full, timeout_s, on_event, prime=fastest)
    poisoned = any((s.result or {}).get("matrix", {}).get("poisoned") for s in shares)
    if fastest and not poisoned:
        time_fastest(shares, timeout_s)
    return merged(shares, order, time.monotonic() - started)


__all__ = ["GROUPS_ENV", "HELPER_GROUPS", "Share", "assign", "helper_groups", "merged", "probe_all",
           "run_parallel", "start_all", "time_fastest"]
