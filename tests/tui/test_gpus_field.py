"""The Setup screen's GPUs field and the Run screen's per-GPU progress, through Pilot.

No GPU here: the app runs on a scripted client that reports two CUDA GPUs (the wiring is
what is tested: the form checks the field against the worker's GPU count, a run builds a
pool of one worker per GPU through the bridge, the Run screen's status line shows each
GPU's progress, and the session's cells say which GPU ran them). The pool's scheduling and
deaths are tested with real workers in tests/faults/test_worker_pool.py.
"""

from __future__ import annotations

from textual.widgets import Input, Label, Static

from flashtui.core import protocol as proto
from flashtui.core.spec import SweepSpec
from flashtui.testing import wait_for
from flashtui.testing.scripted import CPU_ONLY, RecordedSampler, ScriptedClient, ready_data
from flashtui.tui.app import FlashTuiApp

from .conftest import TINY_CPU


class TwoGpuClient(ScriptedClient):
    """ScriptedClient's answers from a worker that sees two CUDA GPUs."""

    def start(self) -> proto.WorkerReady:
        super().start()
        data = ready_data(self.pid)
        data["provenance"] = {"device_kind": "cuda", "device_name": "Test GPU", "device_count": 2,
                              "torch": "2.13.0+cu130"}
        data["backends"] = {name: {"available": name in CPU_ONLY, "reason": None} for name in data["backends"]}
        return proto.WorkerReady(**data)


async def test_gpus_field_is_checked_then_runs_one_worker_per_gpu_with_progress_per_gpu():
    app = FlashTuiApp(default_spec_overrides={**TINY_CPU, "device": "cuda"}, worker_factory=TwoGpuClient,
                      sampler_factory=RecordedSampler, journal=False)
    envs: list[dict[str, str]] = []

    def extra_worker(env: dict[str, str]) -> TwoGpuClient:
        envs.append(env)
        return TwoGpuClient(cell_delay_s=0.4)

    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for(pilot, lambda: app.sweep.ready, 10, "ready")
        app.bridge.client_factory = extra_worker
        app.bridge.client.cell_delay_s = 0.4
        setup = app.screen
        field, error = setup.query_one("#gpus", Input), setup.query_one("#spec-error", Static)
        field.value = "7"
        await wait_for(pilot, lambda: "there is no GPU 7; this machine has 2 GPUs (indices 0-1)"
                       in str(error.render()), 5, "the GPU count error")
        await pilot.press("ctrl+r")
        await pilot.pause(0.2)
        assert app.sweep.session is None  # refused: nothing ran

        field.value = "all"
        await wait_for(pilot, lambda: "on GPUs all" in str(error.render()), 5, "the form accepting 'all'")
        await pilot.press("ctrl+r")
        progress = lambda: str(app.screen.query_one("#progress-text", Label).render())  # noqa: E731
        await wait_for(pilot, lambda: app.run_screen is not None and "gpu1" in progress(), 10,
                       "per-GPU progress on the Run screen")
        assert "gpu0" in progress()
        await wait_for(pilot, lambda: app.sweep.session is not None and len(app.sweep.session.cells) == 6
                       and not app.sweep.running, 20, "the sweep over two GPUs")
        cells = app.sweep.session.cells
        assert [c.key for c in cells] == SweepSpec.from_dict(app.sweep.session.spec).cells()
        assert {c.extra["device_index"] for c in cells} == {0, 1}
        assert all(c.extra.get("shared_device") is None and not c.noisy for c in cells)
        # GPU 0 ran on the app's own worker; one more was started, pinned to GPU 1, and closed.
        assert envs == [{"CUDA_VISIBLE_DEVICES": "1"}]
        assert app.bridge.pool is None and app.bridge.client.pid is not None
