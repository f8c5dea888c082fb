"""Kernel names from a CUDA-graph capture: the parts that run without a GPU (real torch, CPU).

The capture itself is checked against torch.profiler on the device (tests/gpu/test_dispatch_gpu.py).
"""

from __future__ import annotations

import subprocess
import sys

import torch

from flashtui.engine import dispatch, graph_kernels
from flashtui.engine.phases import pay_start_up


def test_demangles_like_the_profiler_and_leaves_plain_names_alone():
    assert graph_kernels.demangle("_ZN2at6native3fooEv") == "at::native::foo()"
    assert graph_kernels.demangle("_Z6kernelPfi") == "kernel(float*, int)"
    # extern "C" names (cuDNN's, Triton's) and broken symbols come back as they were.
    assert graph_kernels.demangle("triton_tem_fused_0") == "triton_tem_fused_0"
    assert graph_kernels.demangle("_Zgarbage") == "_Zgarbage"


def test_without_cuda_nothing_is_captured_and_the_profiler_observes():
    assert graph_kernels.available() is False
    x = torch.randn(32, 32)
    assert graph_kernels.captured_kernel_names(lambda: x @ x) is None
    assert dispatch.needs_profiler("cpu") is True
    observed = dispatch.observe_kernels(lambda: x @ x, "cpu")
    assert observed.method == "profiler" and any("mm" in n for n in observed.names)


def test_names_keep_first_launch_order_once_each():
    names = ["void a()", "void b()", "void a()", "x" * 300]
    assert dispatch._in_order(names) == ["void a()", "void b()", "x" * 119 + "…"]


def test_the_profilers_first_start_is_reported_as_its_own_seconds():
    """In a fresh process the first observation pays the profiler's start-up and says how
    long it took; the second pays nothing."""
    code = ("import torch; from flashtui.engine import dispatch\n"
            "x = torch.randn(64, 64)\n"
            "a = dispatch.observe_kernels(lambda: x @ x, 'cpu')\n"
            "b = dispatch.observe_kernels(lambda: x @ x, 'cpu')\n"
            "print(a.profiler_start_s, b.profiler_start_s, a.method, bool(a.names))\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    first_s, second_s, method, named = run.stdout.split()
    assert float(first_s) > 0 and float(second_s) == 0 and method == "profiler" and named == "True"


def test_start_up_pays_the_profiler_only_where_it_is_needed(monkeypatch):
    paid: list[str] = []
    monkeypatch.setattr(dispatch, "warm_up_profiler", lambda device, *a, **k: paid.append(device))
    monkeypatch.setattr(dispatch, "needs_profiler", lambda device: device == "cpu")
    pay_start_up("cuda", lambda text: None, lambda level, text: None)  # a capture names the kernels
    assert paid == []
    pay_start_up("cuda", lambda text: None, lambda level, text: None, profiler=True)  # model mode
    pay_start_up("cpu", lambda text: None, lambda level, text: None)
    assert paid == ["cuda", "cpu"]


def test_a_cell_keeps_the_names_its_verdict_rests_on_first():
    """The math path launches a dozen kernels, its softmax after eight others: a cell keeps
    MAX_NAMES of them, the backend's own first, and the verdict sees them all."""
    from flashtui.engine.backends import REGISTRY

    names = [f"void at::native::elementwise_kernel<{i}>()" for i in range(10)] + [
        "void at::native::(anonymous namespace)::cunn_SoftMaxForward<8, float>()", "sm80_xmma_gemm_f32f32"]
    math = REGISTRY["sdpa-math"]
    assert dispatch.check(math, names, "cuda").ok is True
    kept = dispatch.shown(math, names)
    assert len(kept) == dispatch.MAX_NAMES and kept[0].endswith("cunn_SoftMaxForward<8, float>()")
    assert kept[1:] == names[:dispatch.MAX_NAMES - 1]
    assert dispatch.check(math, kept, "cuda").ok is True
    assert dispatch.shown(math, None) is None
