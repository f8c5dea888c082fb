"""Read a GPU library's files ahead of their first use (UI side: finds them without torch).

cuDNN's engine libraries (~1 GB in the nvidia-cudnn wheels) are dlopened at the first cuDNN
call, after ``import torch``. On a box that has not used them since boot, that call then
waits on page faults through the files: on the H200 the doctor's sdpa probe took 10.5 s there
against ~1.9 s on a box that had. A sequential read started when the doctor starts overlaps
that with the workers' start-up (the reading thread spends its time in read(), outside the
GIL). Files already in the page cache cost a memory copy.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

# Wheels whose libraries torch loads lazily, at first use: only those need reading ahead
# (libtorch, cuBLAS and the CUDA runtime are read by ``import torch`` itself).
LAZY_LIBRARY_PACKAGES = ("nvidia.cudnn",)
CHUNK_BYTES = 16 << 20


def library_files(packages: tuple[str, ...] = LAZY_LIBRARY_PACKAGES) -> list[Path]:
    """The shared libraries of the installed ``packages`` (their ``lib/*.so*``), largest first."""
    files: list[Path] = []
    for name in packages:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):  # a parent that is not a package, or a broken spec
            continue
        for location in (spec.submodule_search_locations or []) if spec else []:
            lib = Path(location) / "lib"
            if lib.is_dir():
                files += [p for p in lib.iterdir() if ".so" in p.name and p.is_file()]
    return sorted(set(files), key=lambda p: p.stat().st_size, reverse=True)


@dataclass
class ReadAhead:
    """A background read of ``files``; ``bytes_read`` and ``seconds`` once ``done``."""

    files: list[Path]
    bytes_read: int = 0
    seconds: float | None = None
    errors: list[str] = field(default_factory=list)
    _thread: threading.Thread | None = None

    def start(self) -> "ReadAhead":
        self._thread = threading.Thread(target=self._run, daemon=True, name="flashtui-read-ahead")
        self._thread.start()
        return self

    def _run(self) -> None:
        started = time.perf_counter()
        buffer = bytearray(CHUNK_BYTES)
        for path in self.files:
            try:
                with open(path, "rb", buffering=0) as f:
                    while n := f.readinto(buffer):
                        self.bytes_read += n
            except OSError as exc:  # unreadable: the library's own load will say what is wrong
                self.errors.append(f"{path.name}: {exc.strerror or exc}")
        self.seconds = time.perf_counter() - started

    @property
    def done(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    def summary(self) -> dict:
        return {"files": len(self.files), "bytes": self.bytes_read,
                "seconds": None if self.seconds is None else round(self.seconds, 3), "errors": self.errors}


def read_ahead(packages: tuple[str, ...] = LAZY_LIBRARY_PACKAGES) -> ReadAhead | None:
    """Start reading the lazily loaded libraries of ``packages``; None when none is installed."""
    files = library_files(packages)
    return ReadAhead(files).start() if files else None


__all__ = ["LAZY_LIBRARY_PACKAGES", "ReadAhead", "library_files", "read_ahead"]
