"""Worker log noise: profiler trace lines and library warnings become one "N ... hidden"
line in the panel; the full log is kept with the session next to its journal."""

from __future__ import annotations

from pathlib import Path

from flashtui.core.log_noise import PROFILER, WARNING, hidden_summary, split_noise
from flashtui.tui.app import FlashTuiApp

from flashtui.testing import NoSampler, wait_for
from flashtui.testing.scripted import ScriptedClient

USDT_START = ("USDT: [stderr] STAGE:2026-12-01 22:00:01 1234:1234 "
              "SyncActivityProfilerHandler.cpp:123] profiler_start")
USDT_STOP = ("USDT: [stderr] STAGE:2026-12-01 22:00:01 1234:1234 "
             "SyncActivityProfilerHandler.cpp:140] profiler_stop")
TORCH_WARNING = ("/usr/lib/python3/site-packages/torch/nn/functional.py:5560: UserWarning: "
                 "Memory efficient kernel not used because: (Triggered internally)")
WARNING_SOURCE = "  attn_output = torch.nn.functional.scaled_dot_product_attention("
REAL_LINE = "RuntimeError: something the user must see"


def test_split_noise_groups_profiler_lines_and_warnings_with_their_source_line():
    lines = [USDT_START, USDT_STOP] * 6 + [TORCH_WARNING, WARNING_SOURCE, REAL_LINE]
    kept, hidden = split_noise(lines)
    assert kept == [REAL_LINE]
    assert hidden == {PROFILER: 12, WARNING: 2}
    assert hidden_summary(hidden) == "12 profiler lines hidden, 2 library warning lines hidden"
    assert hidden_summary({}) is None
    # An indented line that follows a real line is not taken for a warning's source line.
    assert split_noise([REAL_LINE, "  detail"])[0] == [REAL_LINE, "  detail"]


class NoisyClient(ScriptedClient):
    """Writes profiler noise, a library warning and one real line into its stderr log."""

    def run_sweep(self, spec, cells=None):
        with open(self.log_path, "a") as log:
            log.write("\n".join([USDT_START, USDT_STOP] * 6 + [TORCH_WARNING, WARNING_SOURCE, REAL_LINE]) + "\n")
        yield from super().run_sweep(spec, cells)


async def test_panel_shows_one_hidden_line_and_the_session_keeps_the_full_log(isolated_dirs):
    app = FlashTuiApp(default_spec_overrides=dict(device="cpu", backends=("standard",), seqs=(64,),
                                                  dtypes=("fp32",), reps=3, warmup_ms=5.0),
                      worker_factory=NoisyClient, sampler_factory=NoSampler)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.sweep.ready, 10, "ready")
        await pilot.press("r")
        await wait_for(pilot, lambda: app.sweep.session and app.sweep.session.status != "running",
                       10, "sweep end")
        await pilot.pause(0.2)
        log_text = "\n".join(app.screen.query_one("#worker-log").lines)
        assert "12 profiler lines hidden, 2 library warning lines hidden" in log_text
        assert "USDT" not in log_text and "UserWarning" not in log_text
        assert REAL_LINE in log_text
        attachment = app.sweep.session.attachments["worker_log"]
        kept = Path(attachment["path"])
        assert kept.name.endswith(".worker.log") and str(isolated_dirs) in str(kept)  # next to the journal
        full = kept.read_text()
        assert full.count("profiler_start") == 6 and TORCH_WARNING in full and REAL_LINE in full
        from flashtui.store.index import load

        stored, _problems = load(app.sweep.session.id)
        assert stored.attachments["worker_log"]["path"] == str(kept)
