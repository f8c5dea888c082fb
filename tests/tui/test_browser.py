"""``flashtui serve`` in a real headless Chromium: the Setup screen reaches the browser.

A real server (``python -m flashtui serve --port N`` on 127.0.0.1), a real Chromium
(Debian's; skipped with the reason when absent) driven over DevTools, a screenshot
decoded with zlib and checked against the Setup screen's own colours as Pilot renders
them (screen background, header), which textual-serve's splash page does not have. A
screenshot taken in the browser arrives as a download with the bytes saved on the
server. A second tab starts a second app process with its own worker.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from flashtui.testing import wait_for
from flashtui.tui.app import FlashTuiApp

from .browser import Chromium, colour_counts, decode_png, find_chromium, open_page

pytest.importorskip("textual_serve", reason="textual-serve is not installed (pip install 'flashtui[web]')")
CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, timeout_s: float = 30.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"flashtui serve exited with {proc.returncode}: {proc.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read().decode()
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"flashtui serve did not answer on {url}")


def _descendants(root: int) -> dict[int, str]:
    """pid -> command line of every process below ``root`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = {}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                try:
                    found[pid] = (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                except OSError:
                    continue
                frontier.append(pid)
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie awaiting its parent's wait counts as ended)."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _apps(server_pid: int) -> list[int]:
    return sorted(pid for pid, cmd in _descendants(server_pid).items() if "-m flashtui tui" in cmd
                  and not cmd.startswith(("/bin/sh", "sh ")))


def _workers(app_pid: int) -> list[int]:
    return [pid for pid, cmd in _descendants(app_pid).items() if "flashtui.worker" in cmd]


async def _setup_colours() -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """The Setup screen's background and its header's, as the app renders them (no worker)."""
    from textual.widgets import Header

    app = FlashTuiApp(worker_factory=None, sampler_factory=None)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: app.screen.id == "setup", 10, "Setup screen")
        screen_bg = app.screen.styles.background
        header_bg = app.screen.query_one(Header).styles.background
        return screen_bg.rgb, header_bg.rgb


def _near(a: tuple[int, int, int], b: tuple[int, int, int], tolerance: int = 6) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b))


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    (tmp_path / "shots").mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "flashtui", "serve", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
                                 "FLASHTUI_SCREENSHOT_DIR": str(tmp_path / "shots")})
    try:
        url = f"http://127.0.0.1:{port}/"
        page = _wait_http(url, proc)
        yield url, page, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_served_app_shows_the_setup_screen_in_chromium_and_each_tab_gets_its_own_worker(server, tmp_path):
    url, index_html, proc = server
    assert f'data-session-websocket-url="ws://127.0.0.1:{url.rsplit(":", 1)[1].rstrip("/")}/ws"' in index_html
    screen_bg, header_bg = await _setup_colours()
    browser = Chromium(CHROMIUM)
    try:
        session, ws, page = await open_page(browser.devtools_port())
        try:
            await page.call("Page.navigate", url=url)
            # textual.js sets -first-byte when the app's first frame arrives on the websocket.
            await page.wait_for("document.body.classList.contains('-first-byte')", 90, "the app's first frame")
            dom = await page.evaluate("document.querySelector('#terminal').outerHTML")
            assert 'class="textual-terminal' in dom and "xterm" in dom, dom[:300]
            # The frame settles within seconds; check the pixels until they show the Setup screen.
            deadline, verdict = time.monotonic() + 30, "no screenshot"
            while time.monotonic() < deadline:
                width, height, rows = decode_png(await page.screenshot(scale=0.5))
                counts = colour_counts(rows)
                dominant = max(counts, key=counts.get)
                top = colour_counts(rows, 2, 6)  # inside the first terminal row: the header
                header = max(top, key=top.get)
                verdict = (f"{width}x{height}, {len(counts)} colours, dominant {dominant} "
                           f"(Setup {screen_bg}), header {header} (Setup {header_bg})")
                if len(counts) > 20 and _near(dominant, screen_bg) and _near(header, header_bg):
                    break
                time.sleep(0.5)
            else:
                raise AssertionError(f"the browser does not show the Setup screen: {verdict}")
            assert counts[dominant] < 0.97 * width * height  # not one flat colour: text is drawn
            # A screenshot (the palette's Screenshot: Setup's text fields take plain keys) is
            # written on the server and reaches the browser as a download of the same bytes.
            downloads = tmp_path / "downloads"
            downloads.mkdir()
            await page.call("Page.setDownloadBehavior", behavior="allow", downloadPath=str(downloads))
            await page.evaluate("document.querySelector('.xterm-helper-textarea').focus()")
            await _key(page, "p", "KeyP", 80, modifiers=2)  # ctrl+p
            await asyncio.sleep(0.5)
            await page.call("Input.insertText", text="Screenshot")
            await asyncio.sleep(0.5)
            await _key(page, "Enter", "Enter", 13, text="\r")
            await wait_for_async(lambda: [p for p in downloads.iterdir() if p.suffix == ".svg"], 30,
                                 "the screenshot's download")
            (downloaded,) = [p for p in downloads.iterdir() if p.suffix == ".svg"]
            (saved,) = (tmp_path / "shots").glob("*.svg")
            assert downloaded.name == saved.name and downloaded.read_bytes() == saved.read_bytes()
            assert "<svg" in downloaded.read_text()[:200] and "flashtui" in downloaded.read_text()
            # One app process per connection, each with its own worker.
            await wait_for_async(lambda: len(_apps(proc.pid)) == 1 and _workers(_apps(proc.pid)[0]), 90,
                                 "the first tab's app and worker")
            second = await page.call("Target.createTarget", url=url)
            await wait_for_async(lambda: len(_apps(proc.pid)) == 2 and all(_workers(a) for a in _apps(proc.pid)),
                                 90, "a second app and worker for the second tab")
            first_app, second_app = _apps(proc.pid)
            assert set(_workers(first_app)).isdisjoint(_workers(second_app))
            second_workers = _workers(second_app)
            await page.call("Target.closeTarget", targetId=second["targetId"])
            await wait_for_async(lambda: _apps(proc.pid) == [first_app], 60, "the second tab's app to end")
            # Its worker ends with it (not orphaned); the first tab's is still there.
            await wait_for_async(lambda: not any(_alive(pid) for pid in second_workers), 30,
                                 "the second tab's worker to end")
            assert _workers(first_app)
        finally:
            await ws.close()
            await session.close()
    finally:
        browser.close()


async def _key(page, key: str, code: str, vk: int, modifiers: int = 0, text: str | None = None) -> None:
    """One key press in the page (DevTools Input): xterm.js turns it into terminal input."""
    base = dict(key=key, code=code, windowsVirtualKeyCode=vk, nativeVirtualKeyCode=vk, modifiers=modifiers)
    await page.call("Input.dispatchKeyEvent", type="keyDown", **base, **({"text": text} if text else {}))
    await page.call("Input.dispatchKeyEvent", type="keyUp", **base)


async def wait_for_async(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
