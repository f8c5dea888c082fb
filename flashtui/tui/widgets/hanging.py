"""Plain report text that wraps at the widget's width with a hanging indent.

The doctor's sections are ``key  value`` rows and ``  * advice`` bullets: a long value
wrapped back to column 0 hides the key column, so each continuation line starts under
its value (or under the bullet's text). Wrapping happens at render time, so it follows
the terminal's width (80x24 and wider alike).
"""

from __future__ import annotations

import re

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.text import Text

# Where a continuation line starts: after 'key  ' (two or more spaces) or '  * ' / '  - '.
_VALUE_START = re.compile(r"^(\s*[*-]\s+|\S.*?\s{2,}(?=\S)|\s+)")


def hanging_indent(line: str) -> int:
    match = _VALUE_START.match(line)
    return len(match.group(1)) if match else 0


class Hanging:
    """A Rich renderable: ``text``'s lines, each wrapped under its own value column."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = max(1, options.max_width)
        for line in self.text.splitlines() or [""]:
            if len(line) <= width:
                yield Text(line, no_wrap=True, end="\n")
                continue
            indent = hanging_indent(line)
            if indent >= width // 2:  # a key column this wide leaves no room: plain wrap
                indent = 0
            head, rest = line[:indent], Text(line[indent:])
            for i, part in enumerate(rest.wrap(console, width - indent)):
                yield Text(head if i == 0 else " " * indent, end="") + part + Text("\n", end="")

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        longest = max((len(line) for line in self.text.splitlines()), default=0)
        return Measurement(min(longest, 20), longest)


__all__ = ["Hanging", "hanging_indent"]
