"""Fakes and helpers every test and benchmark can import (``pip install -e .`` is enough).

* :mod:`.scripted`  ``ScriptedClient``: WorkerClient's interface, fixed events, instantly
* :mod:`.samplers`  ``NoSampler`` (no GPU) and ``SyntheticSampler`` (20 Hz GPU memory)
* :mod:`.stored`    sessions journaled into the store with fixed ids (one planted regression)
* :mod:`.pilot`     ``wait_until`` / ``wait_for`` on a headless app
* ``screen_text``   the current screen as plain text (``flashtui.tui.textshot``)

UI side: nothing here imports torch or the engine (import-linter checks it).
"""

from flashtui.testing.pilot import AppStopped, wait_for, wait_until
from flashtui.testing.samplers import NoSampler, SyntheticSampler
from flashtui.testing.scripted import ScriptedClient
from flashtui.tui.textshot import screen_text

__all__ = ["AppStopped", "NoSampler", "ScriptedClient", "SyntheticSampler", "screen_text", "wait_for",
           "wait_until"]
