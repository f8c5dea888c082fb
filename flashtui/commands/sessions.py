"""`flashtui sessions`, `flashtui export`, `flashtui diff`: the stored sessions, headless.

- ``flashtui sessions [--json] [--all]``: the sessions in the store, newest first. A
  session that holds no cell (an older run that measured nothing) is hidden unless
  ``--all``; a journal still being written shows as ``running``.
- ``flashtui export SESSION [--format json|md|csv|html] [-o PATH]``: json/md/csv go to
  stdout without ``-o``; html is written to ``<session id>.html`` in the current
  directory then (a page of SVG is no use in a terminal).
- ``flashtui diff A B [--threshold 0.1] [--json]``: exit 1 when B regressed against A.

SESSION is an id, a unique id prefix, ``latest``, or a path to a .jsonl/.json file.
Load warnings (a truncated journal, a skipped line) go to stderr; errors are one line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from flashtui.errors import EXIT_FINDINGS, EXIT_OK, UsageError
from flashtui.core.session import Session
from flashtui.core.units import NA, fmt_ratio

# Load warnings printed per session before "... and N more".
MAX_WARNINGS_SHOWN = 5


def register(subparsers: Any) -> None:
    listing = subparsers.add_parser("sessions", help="list stored sessions (newest first)")
    listing.add_argument("--json", action="store_true", help="JSON array of summaries")
    listing.add_argument("--all", action="store_true",
                         help="also list sessions that hold no cell (runs that measured nothing)")
    listing.set_defaults(func=run_sessions)

    export = subparsers.add_parser("export", help="export a session as json, md, csv or html")
    export.add_argument("session", metavar="SESSION", help="id, id prefix, 'latest', or a path")
    export.add_argument("--format", "-f", dest="format", default=None,
                        help="json, md, csv or html (default: from -o's suffix, else md)")
    export.add_argument("-o", "--output", default=None, metavar="PATH",
                        help="write here (atomically) instead of stdout")
    export.set_defaults(func=run_export)

    diff = subparsers.add_parser("diff", help="compare session B against baseline A")
    diff.add_argument("a", metavar="A", help="baseline session")
    diff.add_argument("b", metavar="B", help="session to check")
    diff.add_argument("--threshold", default="0.1",
                      help="relative slow-down that counts as a regression (0.1 or 10%%)")
    diff.add_argument("--json", action="store_true", help="machine-readable diff")
    diff.set_defaults(func=run_diff)


def _load(ref: str) -> Session:
    from flashtui.store import index as store

    path = store.resolve(ref)
    session, warnings = store.load_path(path)
    for text in warnings[:MAX_WARNINGS_SHOWN]:
        print(f"flashtui: warning: {path}: {text}", file=sys.stderr)
    if len(warnings) > MAX_WARNINGS_SHOWN:
        print(f"flashtui: warning: {path}: ... and {len(warnings) - MAX_WARNINGS_SHOWN} more",
              file=sys.stderr)
    return session


def run_sessions(args: argparse.Namespace) -> int:
    from flashtui.store import index as store

    summaries = store.list_sessions()
    hidden = 0
    if not args.all:
        hidden = sum(1 for s in summaries if s.empty)
        summaries = [s for s in summaries if not s.empty]
    if args.json:
        print(json.dumps([s.to_dict() for s in summaries], indent=2))
        return EXIT_OK
    if not summaries:
        print(f"no sessions yet in {store.sessions_dir()}; run `flashtui bench` to record one"
              + (f" ({hidden} without cells hidden; --all lists them)" if hidden else ""))
        return EXIT_OK
    header = ("ID", "CREATED", "DEVICE", "MODE", "CELLS ok/all", "BEST SPEEDUP", "STATUS")
    rows = [(s.id, s.created_at or NA, s.device or NA, s.mode or NA,
             f"{s.n_ok}/{s.n_cells}",
             fmt_ratio(s.best_speedup) + (f" ({s.best_speedup_at})" if s.best_speedup_at else ""),
             s.status + (f": {s.error}" if s.error else ""))
            for s in summaries]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    for row in (header, *rows):
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
    if hidden:
        print(f"({hidden} session(s) without cells hidden; --all lists them)")
    return EXIT_OK


def run_export(args: argparse.Namespace) -> int:
    from flashtui.reports import FILE_SUFFIXES, export_session, normalize_format

    if args.format is not None:
        fmt = normalize_format(args.format)
    elif args.output is not None:
        by_suffix = {suffix: name for name, suffix in FILE_SUFFIXES.items()}
        suffix = Path(args.output).suffix.lower()
        if suffix not in by_suffix:
            raise UsageError(f"cannot tell the format from {args.output!r}; add --format "
                             "json|md|csv|html")
        fmt = by_suffix[suffix]
    else:
        fmt = "md"
    session = _load(args.session)
    output = args.output
    if output is None and fmt == "html":
        output = f"{session.id}{FILE_SUFFIXES['html']}"
    if output is None:
        sys.stdout.write(export_session(session, fmt))
        sys.stdout.flush()
    else:
        export_session(session, fmt, output)
        print(f"wrote {output}", file=sys.stderr)
    return EXIT_OK


def parse_threshold(text: str) -> float:
    """``0.1`` or ``10%`` -> 0.1; must be a finite number >= 0."""
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise UsageError(f"--threshold must be a number like 0.1 or 10%, got {text!r}") from None
    if not (0 <= value < 1e6):
        raise UsageError(f"--threshold must be >= 0, got {text!r}")
    return value


def run_diff(args: argparse.Namespace) -> int:
    from flashtui.reports.diff import diff_sessions, render_diff

    threshold = parse_threshold(args.threshold)
    a = _load(args.a)
    b = _load(args.b)
    result = diff_sessions(a, b, threshold)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        sys.stdout.write(render_diff(result))
    return EXIT_FINDINGS if result.regressions else EXIT_OK


__all__ = ["parse_threshold", "register", "run_diff", "run_export", "run_sessions"]
