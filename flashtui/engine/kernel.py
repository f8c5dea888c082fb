"""Kernel mode: attention alone on random q, k, v, one cell at a time.

Cells of one (seq, dtype) group share their inputs and fp64 oracle, so every backend
is judged on the same numbers and the oracle is paid for once per group.
"""

from __future__ import annotations

import time
import warnings
import zlib
from typing import Callable

import torch

from flashtui.core import variants
from flashtui.core.gpu_specs import peak_gbps, peak_tflops
from flashtui.core.results import Cell, Parity
from flashtui.core.spec import CellKey, SweepSpec
from flashtui.engine import dispatch, faults
from flashtui.engine import variants as vp
from flashtui.engine.backends import (
    ELEMENT_BYTES, REGISTRY, TORCH_DTYPES, Backend, DeviceInfo, Prepared, Shape, sdpa_choice, sdpa_reasons,
    theory_bytes,
)
from flashtui.engine.memory import is_oom, measure_peak, refusal, release, room
from flashtui.engine.parity import ParityOracle, oracle_bytes
from flashtui.engine.phases import (COMPILES_ON_FIRST_CALL, PhaseClock, device_bytes_held, pay_start_up,
                                    resettle_heap, settle_heap)
from flashtui.engine.timing import Timing, time_calls

# SDPBackend names -> the flashtui backend that forces that kernel (how `sdpa` cells name it).
SDPA_KERNEL_LABELS = {"FLASH_ATTENTION": "sdpa-flash", "EFFICIENT_ATTENTION": "sdpa-efficient",
                      "CUDNN_ATTENTION": "sdpa-cudnn", "MATH": "sdpa-math", "OVERRIDEABLE": "overrideable"}
# The CPU oracle's working-set budget (rows of fp64 scores at a time), see ParityOracle.
CPU_ORACLE_BUDGET_BYTES = 1 << 27

# Substrings of PyTorch's refusal when a forced SDPA kernel cannot run this input.
_NO_KERNEL = ("No available kernel", "No viable backend")


def forced_kernel_refusal(exc: BaseException, caught: list[warnings.WarningMessage],
                          backend: str) -> str | None:
    """PyTorch's reasons when a forced SDPA kernel cannot run this input, else None.

    PyTorch warns each reason before it raises "No available kernel"; keep them, in order.
    """
    if not any(s in str(exc) for s in _NO_KERNEL):
        return None
    why = sdpa_reasons([str(w.message) for w in caught])
    return f"PyTorch refused {backend}: {why or one_line(exc)}"


def one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fill_timing(cell: Cell, timing: Timing) -> None:
    """Copy one Timing into a cell: loop and device time, spread, samples, the noise verdict."""
    cell.median_ms, cell.iqr_ms, cell.min_ms = timing.median_ms, timing.iqr_ms, timing.min_ms
    cell.reps, cell.host_ms = timing.reps, timing.host_ms
    cell.device_ms, cell.device_ms_method = timing.device_ms, timing.device_ms_method
    cell.samples_ms = [round(s, 6) for s in timing.samples_ms]
    cell.noisy, cell.noise_reason = timing.noisy, timing.noise_reason
    cell.extra["warmup_calls"] = timing.warmup_calls
    if timing.warmup_s is not None:
        cell.extra["warmup_ms"] = round(timing.warmup_s * 1e3, 1)
    if timing.warmup_steady is not None:
        cell.extra["warmup_steady"] = timing.warmup_steady  # False: it ran to its cap, still settling
    cell.extra["calls_per_rep"] = timing.calls_per_rep
    cell.extra["timing_rounds"] = timing.rounds
    cell.extra["l2"] = "cold" if timing.cold_l2 else "warm"
    if timing.host_busy_cores is not None:
        cell.extra["host_busy_cores"] = round(timing.host_busy_cores, 2)
        cell.extra["host_cores"] = timing.host_cores
    if timing.device_ms_note:
        cell.extra["device_ms_note"] = timing.device_ms_note
    cell.extra["t_start_wall_s"], cell.extra["t_end_wall_s"] = timing.wall_window_s


# Backends whose first call this worker has settled the heap after (phases.settle_heap).
_SETTLED: set[str] = set()


class KernelRunner:
    """Runs kernel-mode cells for one sweep spec on one device."""

    def __init__(self, spec: SweepSpec, device: DeviceInfo, *,
                 log: Callable[[str, str], None] = lambda level, text: None,
                 progress: Callable[[str], None] = lambda text: None,
                 should_stop: Callable[[], bool] = lambda: False) -> None:
        self.spec = spec
        self.device = device
        self.log = log
        self.progress = progress
        self.should_stop = should_stop
        self._group: tuple[int, str] | None = None
        self._inputs: tuple[torch.Tensor, ...] | None = None
        self._oracle: ParityOracle | None = None
        self._oracle_reason: str | None = None
        self._layouts: dict[int, variants.Layout] = {}
        self._oracle_built_s: float | None = None
        self._phases = PhaseClock(device.kind)
        self._start_up_s: float | None = None
        # Device bytes still allocated right after the last group change (None on CPU).
        self._held_after_release: int | None = None

    def pay_start_up(self) -> None:
        """One-time costs of a fresh worker that belong to no cell (the heap settle; the
        profiler's start-up where the dispatch pass needs it), paid before the first
        CellStarted so the per-cell watchdog times cells only; its seconds ride on the first
        cell (``extra["start_up_s"]``, outside its duration) and are the session's
        ``start_up`` phase."""
        self._start_up_s = pay_start_up(self.device.kind, self.progress, self.log)

    # ------------------------------------------------------------ group state
    def layout(self, seq: int) -> variants.Layout:
        """The variant at ``seq`` (document lengths drawn once per seq, from the seed)."""
        if seq not in self._layouts:
            self._layouts[seq] = variants.layout_for(self.spec, seq)
        return self._layouts[seq]

    def shape(self, key: CellKey) -> Shape:
        s = self.spec
        return Shape(s.batch, s.heads, s.effective_kv_heads, key.seq, s.head_dim, key.dtype,
                     s.causal, s.backward, layout=self.layout(key.seq))

    def release(self) -> None:
        self._inputs = None
        self._oracle = None
        self._oracle_reason = None
        self._group = None
        if _SETTLED:  # the heap was frozen: nothing frozen outlives its group (phases.resettle_heap)
            held = device_bytes_held(self.device.kind)
            if held is None or self._held_after_release is None or held > self._held_after_release:
                resettle_heap()
            # else: no device memory outlived the group, so no frozen cycle holds a tensor;
            # the full walk (0.56-0.61 s a group change on the H200) is skipped.
        release(self.device.kind)
        self._held_after_release = device_bytes_held(self.device.kind)

    def _group_inputs(self, key: CellKey) -> tuple[torch.Tensor, ...]:
        group = (key.seq, key.dtype)
        if self._group != group:
            self.release()
            self._group = group
            shape = self.shape(key)
            gen = torch.Generator(device=self.device.kind)
            # A stable seed (not hash(), which is salted per process): the same spec gives
            # the same inputs in every worker, including one restarted after a crash.
            gen.manual_seed(zlib.crc32(f"{self.spec.seed}:{key.seq}:{key.dtype}".encode()))
            dtype = TORCH_DTYPES[key.dtype]
            dev = self.device.kind

            def randn(heads: int, rows: int) -> torch.Tensor:
                return torch.randn(shape.batch, heads, rows, shape.head_dim, generator=gen,
                                   device=dev, dtype=torch.float32).to(dtype)

            # q has q_len rows (the last positions); k and v the whole sequence (the KV cache).
            q_len = shape.q_len
            q, k, v = randn(shape.heads, q_len), randn(shape.kv_heads, shape.seq), randn(shape.kv_heads, shape.seq)
            dout = randn(shape.heads, q_len) if shape.backward else None
            valid = vp.query_valid(shape.layout, dev) if shape.layout is not None else None
            if dout is not None and valid is not None:
                dout = dout * valid  # padding rows get no gradient: nothing downstream reads them
            self._inputs = (q, k, v, dout)
        assert self._inputs is not None
        return self._inputs

    def _group_oracle(self, key: CellKey) -> tuple[ParityOracle | None, str | None]:
        if self._oracle is not None or self._oracle_reason is not None:
            return self._oracle, self._oracle_reason
        shape = self.shape(key)
        q, k, v, dout = self._group_inputs(key)
        need = oracle_bytes(shape)
        free = room(self.device.kind)
        if self.device.kind == "cuda":
            budget = int(min(1 << 30, max(free.free_bytes // 4, 1 << 24)))
        else:
            budget = CPU_ORACLE_BUDGET_BYTES
        reason = refusal(need + budget, free, self.device.kind, "fp64 oracle")
        if reason is not None:
            self._oracle_reason = reason
            return None, self._oracle_reason
        self.progress(f"fp64 oracle for seq={key.seq} {key.dtype}")
        built = time.perf_counter()
        try:
            self._oracle = ParityOracle(q, k, v, dout, shape, budget)
        except Exception as exc:  # noqa: BLE001
            if is_oom(exc):
                self._oracle_reason = "fp64 oracle ran out of memory"
            else:
                self._oracle_reason = f"fp64 oracle failed: {one_line(exc)}"
            release(self.device.kind)
        # Built once per (seq, dtype) group: the cell that paid for it carries the phase.
        self._oracle_built_s = time.perf_counter() - built
        return self._oracle, self._oracle_reason

    # ------------------------------------------------------------ one cell
    def run_cell(self, key: CellKey) -> Cell:
        started = time.perf_counter()
        self._phases = PhaseClock(self.device.kind)
        cell = self._run_cell(key)
        cell.duration_s = time.perf_counter() - started
        if self._start_up_s is not None:  # carried once, by the first cell after start-up
            cell.extra["start_up_s"] = round(self._start_up_s, 4)
            self._start_up_s = None
        if self._phases.seconds:
            cell.extra["phases_s"] = self._phases.rounded()
        return cell

    def _run_cell(self, key: CellKey) -> Cell:
        backend = REGISTRY.get(key.backend)
        if backend is None:
            return Cell(key.backend, key.seq, key.dtype, status="unsupported",
                        reason=f"unknown backend {key.backend!r}")
        shape = self.shape(key)
        ok, reason = backend.supports(shape, self.device)
        if not ok:
            return Cell(key.backend, key.seq, key.dtype, status="unsupported", reason=reason)
        cell = Cell(key.backend, key.seq, key.dtype, theory_bytes=theory_bytes(backend, shape))
        refused = self._guard(backend, shape, key, cell)
        if refused is not None:
            cell.status, cell.reason = "oom", refused
            return cell
        try:
            faults.maybe_inject(key, self.device.kind)
            self._measure(backend, shape, key, cell)
        except Exception as exc:  # noqa: BLE001 - every failure is a cell result
            if isinstance(exc, vp.SignatureMismatch):
                cell.status, cell.reason = "unsupported", str(exc)
            elif is_oom(exc):
                cell.status = "oom"
                cell.reason = one_line(exc, 160)
            else:
                cell.status = "failed"
                cell.reason = one_line(exc)
            release(self.device.kind)
        return cell

    # ------------------------------------------------------------ memory guard
    def input_bytes(self, shape: Shape) -> int:
        """q, k, v (and dout) in the cell's dtype, plus the fp32 draw of the largest one."""
        elem = ELEMENT_BYTES[shape.dtype]
        q = shape.batch * shape.heads * shape.q_len * shape.head_dim
        kv = shape.batch * shape.kv_heads * shape.seq * shape.head_dim
        total = (q + 2 * kv + (q if shape.backward else 0)) * elem
        return int(total + q * 4)

    def predicted_bytes(self, backend: Backend, shape: Shape, key: CellKey) -> int:
        """What the cell must hold at its peak, by construction (a lower bound).

        The group's inputs unless already resident, the backend's own layout copies
        (BSHD backends transpose q, k, v), its theory bytes (S x S scores for standard),
        the causal mask standard builds (Q x S booleans; a variant's mask is in the theory
        bytes already) and one output kept alive by the timing loop while the next call runs.
        """
        elem = ELEMENT_BYTES[shape.dtype]
        out = shape.batch * shape.heads * shape.q_len * shape.head_dim * elem
        need = theory_bytes(backend, shape) + out
        if self._group != (key.seq, key.dtype):
            need += self.input_bytes(shape)
        if backend.layout == "bshd":
            need += self.input_bytes(shape) - shape.batch * shape.heads * shape.q_len * shape.head_dim * 4
        masked = shape.layout is not None and vp.plan(backend.name, shape.layout).path == vp.MASK
        if backend.memory_model == "scores" and shape.causal and not masked:
            need += shape.q_len * shape.seq
        return int(need)

    def _guard(self, backend: Backend, shape: Shape, key: CellKey, cell: Cell) -> str | None:
        """Refuse (as oom, nothing allocated) a cell that clearly cannot fit; else None."""
        if self._group is not None and self._group != (key.seq, key.dtype):
            self.release()  # the last group's tensors go now, so they do not count as used
        need = self.predicted_bytes(backend, shape, key)
        free = room(self.device.kind)
        cell.extra["predicted_bytes"] = need
        cell.extra["free_bytes"] = free.free_bytes
        reason = refusal(need, free, self.device.kind)
        if reason is not None:
            cell.extra["memory_guard"] = free.source
        return reason

    def _describe_variant(self, backend: Backend, shape: Shape, cell: Cell) -> None:
        """The cell's variant: its layout (drawn lengths included), the path and notes."""
        layout = shape.layout
        if layout is None or layout.is_dense:
            return
        plan = vp.plan(backend.name, layout, shape.backward)
        info = {"label": self.spec.variant, **layout.to_dict(), "path": plan.path, "how": plan.how}
        notes = variants.cell_notes(layout)
        if notes:
            info["notes"] = notes
        if plan.path == vp.MASK:
            info["mask_bytes"] = vp.mask_bytes(layout)
        cell.extra["variant"] = info

    def _work(self, shape: Shape, cell: Cell, median_ms: float, dtype: str) -> None:
        """FLOPs and least bytes of this variant, the rates they give, and which one to judge."""
        layout = shape.layout or variants.layout_for(self.spec, shape.seq)
        flops = variants.attention_flops(layout, shape.heads, shape.head_dim, shape.backward)
        n_bytes = variants.min_hbm_bytes(layout, shape.heads, shape.kv_heads, shape.head_dim,
                                         ELEMENT_BYTES[dtype], shape.backward)
        seconds = median_ms * 1e-3
        cell.flops, cell.bytes = flops, n_bytes
        cell.tflops = flops / seconds / 1e12
        cell.gbps = n_bytes / seconds / 1e9
        cuda = self.device.kind == "cuda"
        peak = peak_tflops(self.device.name, dtype) if cuda else None
        bandwidth = peak_gbps(self.device.name) if cuda else None
        cell.pct_peak = 100.0 * cell.tflops / peak if peak else None
        cell.pct_bw_peak = 100.0 * cell.gbps / bandwidth if bandwidth else None
        cell.bound = variants.judged_on(flops, n_bytes, peak, bandwidth, kv_cache=layout.q_len < layout.seq)

    def _measure(self, backend: Backend, shape: Shape, key: CellKey, cell: Cell) -> None:
        phases = self._phases
        q, k, v, dout = self._group_inputs(key)
        self._describe_variant(backend, shape, cell)
        prepared = backend.prepare(q, k, v, shape)
        phases.mark("inputs")
        refused = backend.refusal(prepared, shape)
        if refused:
            cell.status, cell.reason = "unsupported", refused
            return
        if backend.name == "sdpa":
            # PyTorch's own pick, named: the proof comes from the kernels observed below.
            picked = sdpa_choice(*prepared.inputs[:3], shape, prepared.sdpa_mask, prepared.sdpa_causal)
            cell.extra["sdpa_kernel"] = picked  # SDPBackend name, as in sdpa_kernel(SDPBackend.X)
            if picked == "MATH":
                cell.theory_bytes = theory_bytes(REGISTRY["sdpa-math"], shape)
        call = self._callable(backend, prepared, dout)
        dev = self.device.kind
        with prepared.context():
            # First call: compiles/autotunes, and is where a forced SDPA kernel refuses.
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    first = call()
                except RuntimeError as exc:
                    refused = forced_kernel_refusal(exc, caught, backend.name)
                    if refused is None:
                        raise
                    cell.status, cell.reason = "unsupported", refused
                    return
            del first
            first_call_s = phases.mark("first_call")
            if backend.name in COMPILES_ON_FIRST_CALL:
                # Compilation is a figure of its own, never inside a timing.
                cell.extra["compile_s"] = round(first_call_s, 4)
            if backend.name not in _SETTLED:
                # Its imports and compiled code now live for good: freeze them out of
                # every later collection (see phases.settle_heap).
                _SETTLED.add(backend.name)
                settle_heap()
                phases.mark("heap")
            self.progress(f"timing {key.label()}")
            timing = time_calls(call, dev, self.spec.reps, self.spec.warmup_ms, self.should_stop,
                                cold_l2=self.spec.cold_l2)
            phases.mark("timing", less=("warmup", timing.warmup_s))
            fill_timing(cell, timing)
            self._work(shape, cell, timing.median_ms, key.dtype)
            mem = measure_peak(call, dev)
            cell.peak_alloc_bytes, cell.reserved_bytes = mem.peak_alloc_bytes, mem.reserved_bytes
            phases.mark("memory")
            observed = dispatch.observe_kernels(call, dev)
            seen = observed.names
            if observed.method:
                cell.extra["kernels_method"] = observed.method
            phases.mark("dispatch", less=("profiler_start", observed.profiler_start_s or None))
            picked = REGISTRY.get(SDPA_KERNEL_LABELS.get(cell.extra.get("sdpa_kernel") or "", "")) \
                if backend.name == "sdpa" else None
            cell.kernels = dispatch.shown(picked or backend, seen)
            verdict = dispatch.check(picked or backend, seen, dev)
            cell.dispatch_ok = verdict.ok
            if verdict.ok is False and picked is not None:
                # PyTorch named one kernel and ran another: say so, keep the measurement.
                cell.extra["sdpa_kernel_note"] = f"PyTorch picked {picked.name}, but {verdict.reason}"
            if picked is not None and "variant" in cell.extra and prepared.sdpa_mask is not None:
                # Said, never silent: which kernel a mask sent PyTorch to, and what that costs.
                cell.extra["variant"]["kernel"] = picked.name
                if picked.name == "sdpa-math":
                    cell.extra["variant"]["cost"] = ("the mask sent PyTorch to its math kernel, which "
                                                     "materializes the Q x S scores")
                elif picked.name != "sdpa-flash":
                    cell.extra["variant"]["cost"] = (f"the mask rules out the flash kernel: PyTorch ran "
                                                     f"{picked.name}")
            elif verdict.ok is False:
                cell.status = "failed"
                cell.reason = verdict.reason
            if self.spec.parity:
                try:
                    cell.parity = self._parity(key, backend, prepared, dout)
                except Exception as exc:  # noqa: BLE001 - the timings above stay measured
                    if not is_oom(exc):
                        raise
                    release(dev)
                    cell.parity = Parity(reason=f"the parity pass ran out of memory: {one_line(exc, 120)}")
                phases.mark("parity", less=("parity_oracle", self._oracle_built_s))
                self._oracle_built_s = None

    def _callable(self, backend: Backend, prepared: Prepared, dout: torch.Tensor | None):
        if dout is None:
            return prepared.forward
        dout_layout = dout.transpose(1, 2).contiguous() if backend.layout == "bshd" else dout

        def forward_backward():
            out = prepared.forward()
            return torch.autograd.grad(out, prepared.inputs, dout_layout)
        return forward_backward

    def _parity(self, key: CellKey, backend: Backend, prepared: Prepared,
                dout: torch.Tensor | None) -> Parity:
        oracle, reason = self._group_oracle(key)
        if oracle is None:
            return Parity(reason=reason)
        # The parity pass runs the backend once more beside the resident oracle.
        shape = self.shape(key)
        elem = ELEMENT_BYTES[shape.dtype]
        need = theory_bytes(backend, shape) + shape.batch * shape.heads * shape.q_len * shape.head_dim * (elem + 8)
        tight = refusal(need, room(self.device.kind), self.device.kind, "the parity pass")
        if tight is not None:
            return Parity(reason=tight)
        with prepared.context():
            out = prepared.forward()
            grads = None
            if dout is not None:
                dout_layout = dout.transpose(1, 2).contiguous() if backend.layout == "bshd" else dout
                grads = tuple(prepared.to_bhsd(g) for g in torch.autograd.grad(out, prepared.inputs, dout_layout))
            return oracle.evaluate(prepared.to_bhsd(out), grads)
