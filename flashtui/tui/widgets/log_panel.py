"""Worker log: Log events, progress lines and the worker's stderr tail."""

from __future__ import annotations

from textual.widgets import Log


class WorkerLog(Log):
    """A bounded, auto-scrolling log; ``append(level, text)`` adds one line."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(max_lines=2000, auto_scroll=True, **kwargs)  # type: ignore[arg-type]

    def append(self, level: str, text: str) -> None:
        prefix = {"info": "", "": ""}.get(level, f"[{level}] ")
        for line in str(text).splitlines() or [""]:
            self.write_line(prefix + line)
