"""SVG screenshots of a stored session in the real app's Sessions viewer (Charts, Tables).

Takes sessions exported as JSON (``flashtui export SESSION -f json``, e.g. the H100
sessions in ``docs/examples/``) or session journals (``.jsonl``), and for each one:

1. journals it, with flashtui's own store API (``store.load_path`` then
   ``store.open_journal`` / ``SessionJournal.finish``), into a temporary, isolated
   ``FLASHTUI_DATA_DIR`` (config too: ``FLASHTUI_CONFIG_DIR``), so neither the user's
   store nor settings are read or touched;
2. runs the real ``FlashTuiApp`` headless (``app.run_test``) without a worker
   (``worker_factory=None``: nothing is measured, torch is never imported), opens the
   Sessions screen (``o``), opens the session (enter), switches to its Charts tab
   (``g``), waits until the four plots are drawn (time vs seq, memory vs seq, speedup
   bars, memory-saving bars) and saves ``<name>-charts.svg`` with
   ``app.save_screenshot``; with ``--view tables`` (or ``charts,tables``) the Tables
   tab too, as ``<name>-tables.svg``.

The numbers drawn are the session's own, as measured where it ran (the H100 for the
examples); only the drawing happens on this machine, which needs no GPU. So that a
screenshot cannot be read as a run here, the script sets the viewer's header
sub-title to "stored numbers drawn here · measured on <device> · driver · CUDA · torch
· flash-attn versions" from the session's provenance (versions dropped from the end
when the width is short); the viewer's own info line names the session id, date,
device, mode and cell count.

Examples::

    python benchmarks/tui_session_shot.py docs/examples/h100-kernel-bf16.json \\
        docs/examples/h100-gpt2-prefill.json --name kernel,gpt2-prefill \\
        --view charts,tables --out docs/screenshots/h100

Exit 0 when every screenshot was saved; 2 for bad input (a missing file, a file that
is not a flashtui session, a session without cells, bad flags): one line on stderr;
3 when the charts could not be drawn (textual-plotext missing or broken: its one-line
reason) or did not appear in time; 4 when the app itself stopped on an exception.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

from flashtui.paths import CONFIG_DIR_ENV, DATA_DIR_ENV
from flashtui.testing import AppStopped, screen_text, wait_until

VIEWS = ("charts", "tables")
CHART_TITLES = ("time vs seq", "memory vs seq", "speedup vs standard", "memory saving vs standard")
# Below this many rows the bar charts draw no title (every row goes to the canvas).
SMALL_SCREEN_ROWS = 40
TABLE_TITLES = ("timing (median ± IQR)", "parity vs fp64", "memory")
EXIT_OK, EXIT_BAD_INPUT, EXIT_NOT_DRAWN, EXIT_APP_STOPPED = 0, 2, 3, 4


class BadInput(ValueError):
    """One line for stderr: what is wrong with the arguments or an input file."""


class NotDrawn(RuntimeError):
    """The app ran but the wanted view did not appear (its reason, one line)."""




def note(text: str) -> None:
    print(f"tui_session_shot: {text}", file=sys.stderr, flush=True)


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's usage dump -> our one line, exit 2
        raise BadInput(message)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = Parser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sessions", nargs="+", metavar="SESSION",
                   help="exported session .json (flashtui export -f json) or a .jsonl journal")
    p.add_argument("--out", default="tui-screenshots", help="folder for the SVG files")
    p.add_argument("--name", default=None,
                   help="comma list, one per SESSION: file names are NAME-charts.svg, NAME-tables.svg "
                        "(default: each file's stem)")
    p.add_argument("--view", default="charts", help="comma list of charts, tables (default: charts)")
    p.add_argument("--size", default="160x50", help="terminal WIDTHxHEIGHT in cells")
    p.add_argument("--timeout-s", type=float, default=30.0, help="longest wait for each view to draw")
    args = p.parse_args(argv)
    views = [v.strip() for v in args.view.split(",") if v.strip()]
    unknown = [v for v in views if v not in VIEWS]
    if not views or unknown:
        raise BadInput(f"--view takes a comma list of {', '.join(VIEWS)}; got {args.view!r}")
    args.views = list(dict.fromkeys(views))
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise BadInput(f"--size must be WIDTHxHEIGHT like 160x50; got {args.size!r}") from None
    if width < 40 or height < 12:
        raise BadInput(f"--size {args.size} is too small for the viewer (at least 40x12)")
    args.width, args.height = width, height
    if args.name is None:
        args.names = [Path(s).stem for s in args.sessions]
    else:
        args.names = [n.strip() for n in args.name.split(",")]
        if len(args.names) != len(args.sessions) or not all(args.names):
            raise BadInput(f"--name needs one non-empty name per SESSION ({len(args.sessions)}); "
                           f"got {args.name!r}")
    bad = [n for n in args.names if "/" in n or os.sep in n or n.startswith(".")]
    if bad:
        raise BadInput(f"--name must be plain file names, not paths: {', '.join(bad)}")
    if len(set(args.names)) != len(args.names):
        raise BadInput(f"two sessions would be saved under the same name: {', '.join(args.names)}")
    return args


def load_sessions(paths: list[str]) -> list[Any]:
    """Each file as a Session (flashtui's loader); BadInput names the first bad one."""
    from flashtui.store import index as store
    from flashtui.core.session import SessionError

    sessions = []
    for ref in paths:
        path = Path(ref).expanduser()
        if not path.is_file():
            raise BadInput(f"no such session file: {ref}")
        try:
            session, warnings = store.load_path(path)
        except SessionError as exc:
            raise BadInput(str(exc).splitlines()[0] if str(exc).strip() else f"{ref}: unreadable") from None
        except OSError as exc:
            raise BadInput(f"cannot read {ref}: {exc.strerror or exc}") from None
        for text in warnings[:3]:
            note(f"warning: {ref}: {text}")
        if not session.cells:
            raise BadInput(f"{ref}: the session has no cells; nothing to draw")
        sessions.append(session)
    ids = [s.id for s in sessions]
    if len(set(ids)) != len(ids):
        raise BadInput(f"the same session was given twice: {', '.join(ids)}")
    return sessions


@contextlib.contextmanager
def isolated_store() -> Iterator[Path]:
    """A temporary FLASHTUI_DATA_DIR and FLASHTUI_CONFIG_DIR; the old values come back after."""
    keys = (DATA_DIR_ENV, CONFIG_DIR_ENV)
    saved = {k: os.environ.get(k) for k in keys}
    with tempfile.TemporaryDirectory(prefix="flashtui-session-shot-") as tmp:
        os.environ[DATA_DIR_ENV] = str(Path(tmp) / "data")
        os.environ[CONFIG_DIR_ENV] = str(Path(tmp) / "config")
        try:
            yield Path(tmp)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def journal_into_store(session: Any) -> Path:
    """Write the session as the app journals a sweep: header with its cells, then footer."""
    from flashtui.store import index as store

    journal = store.open_journal(session, fsync=False)
    journal.finish(session)  # status and finished_at are the session's own
    return journal.path


def provenance_line(session: Any, max_chars: int = 130) -> str:
    """'stored numbers drawn here · measured on <device> · driver … · torch …', cut to fit.

    The header truncates a long sub-title with '…'; the versions are dropped from the
    end instead, so the disclaimer and the device always stay readable.
    """
    from flashtui.reports.table import SEPARATOR, provenance_line as session_provenance

    device, *versions = session_provenance(session.provenance or {}).split(SEPARATOR)
    parts = ["stored numbers drawn here", f"measured on {device}", *versions]
    while len(parts) > 2 and len(" · ".join(parts)) > max_chars:
        parts.pop()
    return " · ".join(parts)


async def open_in_viewer(pilot: Any, session_id: str, timeout_s: float) -> Any:
    """Sessions screen (o), cursor on the session's row, enter: the SessionViewScreen."""
    from textual.widgets import DataTable

    from flashtui.tui.screens.sessions import SessionsScreen, SessionViewScreen

    app = pilot.app
    while isinstance(app.screen, SessionViewScreen):  # back from the previous session
        await pilot.press("escape")
    if not isinstance(app.screen, SessionsScreen):
        await pilot.press("o")
    if not await wait_until(pilot, lambda: isinstance(app.screen, SessionsScreen) and app.screen.loaded,
                            timeout_s):
        raise NotDrawn("the Sessions screen did not list the store in time")
    screen = app.screen
    ids = [s.id for s in screen.summaries]
    if session_id not in ids:
        raise NotDrawn(f"session {session_id} is not in the Sessions list ({', '.join(ids) or 'empty'})")
    screen.query_one("#sessions-table", DataTable).move_cursor(row=ids.index(session_id))
    await pilot.press("enter")
    if not await wait_until(pilot, lambda: isinstance(app.screen, SessionViewScreen)
                            and app.screen.session.id == session_id, timeout_s):
        notes = "; ".join(n.message for n in app._notifications) or "no reason shown"
        raise NotDrawn(f"session {session_id} did not open: {notes}")
    return app.screen


async def show_view(pilot: Any, view: str, timeout_s: float) -> None:
    """Make ``view`` the active tab of the viewer and wait until its content is drawn."""
    from textual.widgets import TabbedContent

    app = pilot.app
    tabs = app.screen.query_one("#view-tabs", TabbedContent)
    wanted = f"view-{view}"
    if tabs.active != wanted:
        await pilot.press("g")  # the viewer's own toggle (builds the charts on first show)
    if not await wait_until(pilot, lambda: tabs.active == wanted, timeout_s):
        raise NotDrawn(f"the {view} tab did not become active")
    titles = CHART_TITLES if view == "charts" else TABLE_TITLES

    def drawn() -> bool:
        nonlocal titles
        unavailable = app.screen.query("#view-charts-unavailable")
        if view == "charts" and unavailable:
            raise NotDrawn(str(unavailable.first().render()).strip() or "charts unavailable")
        text = screen_text(app)
        if view == "charts" and app.screen.size.height < SMALL_SCREEN_ROWS:
            # Short plots give their title row to the canvas: wait for the line charts'
            # titles and for the bars themselves.
            titles = CHART_TITLES[:2]
            return all(t in text for t in titles) and "█" in text
        return all(t in text for t in titles)

    if not await wait_until(pilot, drawn, timeout_s):
        missing = [t for t in titles if t not in screen_text(app)]
        if os.environ.get("FLASHTUI_SHOT_DEBUG"):
            print(screen_text(app), file=sys.stderr)
        raise NotDrawn(f"the {view} tab did not draw within {timeout_s:.0f} s (missing: {', '.join(missing)})")
    await pilot.pause(0.2)  # one more frame, so the saved screen is the settled one


async def shoot(args: argparse.Namespace, sessions: list[Any]) -> list[Path]:
    from flashtui.tui.app import FlashTuiApp

    out = Path(args.out)
    for session, source in zip(sessions, args.sessions):
        path = journal_into_store(session)
        note(f"journaled {source} as {path.name} ({len(session.cells)} cells, "
             f"{session.provenance.get('device_name') or 'device NA'})")
    # No worker, no sampler, no journal: the app only reads the (temporary) store.
    app = FlashTuiApp(worker_factory=None, sampler_factory=None, journal=False)
    saved: list[Path] = []
    async with app.run_test(size=(args.width, args.height)) as pilot:
        await pilot.pause(0.1)
        for session, name in zip(sessions, args.names):
            screen = await open_in_viewer(pilot, session.id, args.timeout_s)
            # The header shows 'flashtui — <sub-title>' between its icon and clock.
            screen.sub_title = provenance_line(session, max_chars=args.width - 30)
            for view in args.views:
                await show_view(pilot, view, args.timeout_s)
                app.clear_notifications()
                await pilot.pause(0.1)
                saved.append(Path(app.save_screenshot(filename=f"{name}-{view}.svg", path=str(out))))
                note(f"saved {saved[-1]} ({session.id}, {view})")
    return saved


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        sessions = load_sessions(args.sessions)
        try:
            Path(args.out).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BadInput(f"cannot create --out {args.out}: {exc.strerror or exc}") from None
        with isolated_store():
            saved = asyncio.run(shoot(args, sessions))
    except BadInput as exc:
        note(f"bad input: {exc}")
        return EXIT_BAD_INPUT
    except NotDrawn as exc:
        note(f"not drawn: {exc}")
        return EXIT_NOT_DRAWN
    except Exception as exc:  # AppStopped, or the app's own exception re-raised by run_test
        if not isinstance(exc, AppStopped):
            import traceback

            traceback.print_exc()
        note(f"the app stopped: {type(exc).__name__}: {exc}")
        return EXIT_APP_STOPPED
    print("\n".join(str(p) for p in saved))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
