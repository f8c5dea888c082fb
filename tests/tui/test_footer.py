"""QuietFooter: keys follow the focused widget's bindings; same keys, no rebuild."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Button
from textual.widgets._footer import FooterKey

from flashtui.tui.widgets.footer import QuietFooter


class Plain(Button):
    pass


class WithKey(Button):
    BINDINGS = [Binding("z", "zap", "Zap")]

    def action_zap(self) -> None:
        pass


class FooterApp(App):
    BINDINGS = [Binding("q", "quit", "Quit")]

    def compose(self) -> ComposeResult:
        yield Plain("a", id="a")
        yield Plain("b", id="b")
        yield WithKey("c", id="c")
        yield QuietFooter()


def _keys(app: App) -> list[FooterKey]:
    return list(app.query(FooterKey))


def _shown(app: App) -> list[str]:
    return sorted(k.key for k in _keys(app) if k.key != "ctrl+p")  # less the palette key


async def test_footer_follows_bindings_and_keeps_keys_when_unchanged():
    app = FooterApp()
    async with app.run_test() as pilot:
        app.query_one("#a").focus()
        await pilot.pause()
        before = _keys(app)
        assert _shown(app) == ["q"]

        app.query_one("#b").focus()  # same visible bindings: the footer keeps its widgets
        await pilot.pause()
        assert _keys(app) == before

        app.query_one("#c").focus()  # one more binding: the footer shows it
        await pilot.pause()
        assert _shown(app) == ["q", "z"]

        app.query_one("#a").focus()  # and drops it again
        await pilot.pause()
        assert _shown(app) == ["q"]
