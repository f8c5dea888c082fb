"""Numbers you can trust: the noise verdict, host load, PyTorch's own SDPA choice and reasons."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from flashtui.core.results import Cell
from flashtui.core.spec import SweepSpec
from flashtui.engine import dispatch, hostload
from flashtui.engine.backends import DeviceInfo, Shape, clean_warning, documented_refusal, sdpa_reasons
from flashtui.engine.kernel import KernelRunner
from flashtui.engine.timing import NOISY_IQR_FRACTION, judge, summarize, time_calls


def _timing(samples, host_ms=None, busy=None, cores=2):
    import dataclasses

    t = summarize(samples, 2, [host_ms] if host_ms is not None else None)
    return dataclasses.replace(t, host_busy_cores=busy, host_cores=cores)


def test_judge_wide_spread_is_noisy_with_the_spread_in_the_reason():
    noisy, reason = judge(_timing([1.0, 1.0, 2.0, 3.0, 3.0], busy=0.0), "cpu", 3)
    assert noisy and reason.startswith("IQR 100% of median after 3 rounds")


def test_judge_tight_quiet_cell_is_trusted():
    assert judge(_timing([1.0, 1.01, 1.02, 1.0, 1.01], busy=0.1), "cpu", 1) == (False, None)


def test_judge_busy_host_makes_cpu_cells_noisy_but_not_kernel_bound_gpu_cells():
    tight = [1.0, 1.01, 1.02, 1.0, 1.01]
    noisy, reason = judge(_timing(tight, busy=2.0), "cpu", 1)
    assert noisy and reason == "host CPU busy 2.0 of 2 cores with other processes"
    # A 1 ms kernel launched in 0.02 ms: the host is off the critical path.
    assert judge(_timing(tight, host_ms=0.02, busy=3.0), "cuda", 1) == (False, None)
    # Launch-bound (host 0.9 ms of 1 ms): a busy host is inside the number.
    noisy, reason = judge(_timing(tight, host_ms=0.9, busy=3.0), "cuda", 1)
    assert noisy and "host CPU busy 3.0" in reason


def test_host_load_sees_a_busy_process_and_not_our_own_work():
    loop = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # let it get going
        window = hostload.HostLoad.start()
        time.sleep(1.0)
        busy, cores = window.stop()
    finally:
        loop.kill()
        loop.wait()
    if busy is None:
        pytest.skip("no /proc/stat here")
    assert cores >= 1 and busy >= 0.5


def test_a_short_first_window_is_judged_from_the_readings_since_the_worker_started():
    # The worker starts the reader at start-up; a 20 ms timed region then still looks back
    # half a second, instead of judging two jiffies (the first cell of a sweep was never noisy).
    loop = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        hostload.start_reader()
        time.sleep(0.8)
        window = hostload.HostLoad.start()
        time.sleep(0.02)
        busy, cores = window.stop()
    finally:
        loop.kill()
        loop.wait()
    if busy is None:
        pytest.skip("no /proc/stat here")
    assert busy >= 0.5, busy


def test_time_calls_remeasures_a_wide_cell_and_marks_it_noisy():
    durations = iter([0.001, 0.008] * 10_000)

    def jittery():
        time.sleep(next(durations))

    t = time_calls(jittery, "cpu", reps=8, warmup_ms=0)
    assert t.rel_iqr > NOISY_IQR_FRACTION
    assert t.rounds > 1, "a wide cell gets measured again within the budget"
    assert t.noisy and "IQR" in t.noise_reason


def test_cell_trustworthy_and_launch_bound():
    assert Cell("sdpa", 128, "bf16", median_ms=1.0).trustworthy
    assert not Cell("sdpa", 128, "bf16", median_ms=1.0, noisy=True).trustworthy
    assert not Cell("sdpa", 128, "bf16", status="failed").trustworthy
    assert Cell("fa4", 1024, "bf16", median_ms=0.090, host_ms=0.085).launch_bound
    assert Cell("fa4", 1024, "bf16", median_ms=0.090, host_ms=0.02, device_ms=0.046).launch_bound
    assert not Cell("fa4", 16384, "bf16", median_ms=1.74, host_ms=0.02, device_ms=1.73).launch_bound
    # Model mode has no kernel time: a 1.15 s prefill whose host returns after 1.15 s is the
    # host waiting on a full launch queue (H200, Mistral-7B shape), not a launch-bound call.
    assert not Cell("standard", 8192, "bf16", median_ms=1150.0, host_ms=1149.0).launch_bound
    assert Cell("sdpa", 512, "bf16", median_ms=4.0, host_ms=3.9).launch_bound


def test_pytorch_warnings_lose_the_triggered_internally_noise():
    raw = ("Flash attention kernel not used because: (Triggered internally at "
           "/pytorch/aten/src/ATen/native/transformers/cuda/sdp_utils.cpp:912.)")
    assert clean_warning(raw) == "Flash attention kernel not used because"
    detail = ("Expected query, key and value to all be of dtype: {Half, BFloat16}. Got Query dtype: "
              "float (Triggered internally at /pytorch/aten/src/ATen/native/transformers/sdp_utils_cpp.h:97.)")
    assert sdpa_reasons([raw, detail, detail]) == (
        "Expected query, key and value to all be of dtype: {Half, BFloat16}. Got Query dtype: float")


def test_a_refusal_pytorch_gave_no_reason_for_says_the_documented_rule_never_a_blank():
    """On the H200 (torch 2.11) can_use_*(debug=True) printed its reasons to the C++ log, so
    the cell said "no reason given"; the documented rule that applies is said instead."""
    shape = Shape(8, 32, 8, 4096, 128, "bf16", True, False)
    gqa = documented_refusal("EFFICIENT_ATTENTION", gqa=True, masked=False, shape=shape)
    assert "GQA (enable_gqa) for the flash and math kernels only" in gqa and "sdpa-flash" in gqa
    masked = documented_refusal("FLASH_ATTENTION", gqa=False, masked=True, shape=shape)
    assert "takes no attn_mask" in masked
    assert documented_refusal("CUDNN_ATTENTION", gqa=False, masked=False, shape=shape).startswith(
        "PyTorch gave no reason")


def test_sdpa_cell_names_the_kernel_pytorch_picked_and_the_kernels_prove_it():
    spec = SweepSpec(device="cpu", seqs=(128,), dtypes=("fp32",), backends=("sdpa",), heads=2,
                     head_dim=32, reps=3, warmup_ms=0, parity=True)
    cell = KernelRunner(spec, DeviceInfo("cpu", "cpu")).run_cell(spec.cells()[0])
    assert cell.status == "ok", cell.reason
    assert cell.extra["sdpa_kernel"] in ("FLASH_ATTENTION", "MATH")
    assert dispatch.sdpa_kernel_from_names(cell.kernels) == cell.extra["sdpa_kernel"]
    assert cell.dispatch_ok is True and "sdpa_kernel_note" not in cell.extra
    assert cell.samples_ms and len(cell.samples_ms) == cell.reps
    assert cell.parity.passed


def test_bench_cli_standard_and_sdpa_on_cpu_names_the_kernel(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "flashtui", "bench", "--device", "cpu", "--backends", "standard,sdpa",
         "--seq", "128", "--dtype", "fp32", "--heads", "2", "--head-dim", "32", "--reps", "3",
         "--warmup-ms", "0", "--json", "--no-journal"],
        capture_output=True, text=True, timeout=240)
    assert out.returncode in (0, 1), out.stderr[-2000:]
    session = json.loads(out.stdout)
    cells = {c["backend"]: c for c in session["cells"]}
    assert set(cells) == {"standard", "sdpa"}
    assert cells["sdpa"]["extra"]["sdpa_kernel"] in ("FLASH_ATTENTION", "MATH")
    for cell in cells.values():
        assert cell["samples_ms"] and "noisy" in cell


def test_model_mode_sdpa_is_transformers_default_and_names_the_kernel_that_ran():
    from flashtui.engine.models import ModelRunner

    spec = SweepSpec(mode="prefill", model="tiny-gpt2", device="cpu", dtypes=("fp32",), seqs=(32,),
                     backends=("sdpa",), batch=2, reps=3, warmup_ms=0)
    cell = ModelRunner(spec, DeviceInfo("cpu", "cpu")).run_cell(spec.cells()[0])
    assert cell.status == "ok", cell.reason
    assert cell.extra["attn_implementation"] == "sdpa"
    assert cell.extra["sdpa_kernel"] in ("FLASH_ATTENTION", "MATH")
    assert cell.samples_ms and cell.noisy is not None


def test_cold_l2_flag_reaches_the_spec_and_the_table_says_so():
    from flashtui.cli import build_parser
    from flashtui.commands.bench import spec_from_args
    from flashtui.core.session import Session
    from flashtui.reports import table

    args = build_parser().parse_args(["bench", "--device", "cpu", "--cold-l2"])
    spec = spec_from_args(args, cuda_present=False)
    assert spec.cold_l2 is True
    assert spec_from_args(build_parser().parse_args(["bench", "--device", "cpu"]), False).cold_l2 is False
    assert "L2 flushed per call" in table.spec_line(spec.to_dict())


def test_a_graph_holds_enough_calls_that_its_fixed_cost_is_negligible():
    from flashtui.engine.timing import GRAPH_BLOCK_TARGET_MS, MAX_CALLS_PER_GRAPH, graph_calls

    # fa4 at B=4 S=1024 on the H200: 0.043 ms a call -> ~117 calls, ~5 ms a replay.
    assert graph_calls(0.043) * 0.043 >= GRAPH_BLOCK_TARGET_MS
    assert graph_calls(36.0) == 1  # standard at 16k: one call already lasts longer
    assert graph_calls(0.0) == MAX_CALLS_PER_GRAPH  # a zero estimate never divides by zero
