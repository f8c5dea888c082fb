"""What this GPU + torch + flash-attn build can run, and why not (``flashtui doctor``).

Three answers, all measured in the worker by running real kernels, never assumed:

* :func:`probe` -- a capability matrix backend x dtype x head_dim. Each cell runs a
  tiny causal forward (B=1, H=2, S=128) and compares it with an fp64 reference, then
  a backward (gradients checked the same way). A cell is ``ok``, ``unsupported`` (the
  registry's ``supports()`` reason, or PyTorch's own warnings when a forced SDPA kernel
  refuses the input) or ``failed`` (the exception text, or "ran but the output is
  wrong"). For SDPA backends the registry's refusal is not taken on trust: the forced
  kernel is tried anyway (it costs microseconds), so the cell carries PyTorch's own
  reason, and a registry that is stricter than PyTorch shows up as a note.
  Compile-heavy backends (``flex``: torch.compile, for dense attention once per dtype
  and head_dim; ``fa4``: ~11 s import and ~3-4 s of CuTe compilation per new shape) are probed in the quick mode only at the
  typical dtype and head_dim 128, forward only; the other cells say "not_probed" and
  why. ``full=True`` probes every cell. Each backend's probe time is in the result.
  Plus a short timed probe of every backend that ran at one typical shape ("fastest
  here"), labelled as such -- it is a hint, ``flashtui bench`` is the measurement.
* :func:`probe_variants` -- backend x attention variant (window, softcap, documents,
  padding, decode, paged cache): native, through a mask, or not at all with the reason,
  each a tiny run checked against the fp64 oracle with the same variant (compile-heavy
  backends show their plan, unrun, unless ``full``).
* :func:`advice` -- sentences a user can act on (install commands that match this
  torch/CUDA/Python, what the GPU generation rules out).
* :func:`capacity` -- the longest sequence each backend fits: double from a start
  until OOM (or a cap), then bisect between the last fit and the first OOM.

Everything returned is plain JSON (it crosses the process boundary). NA is ``None``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
import warnings
from typing import Any, Callable

import torch

from types import SimpleNamespace

from flashtui.core.doctor_merge import cpu_line, rank_fastest
from flashtui.core.spec import SweepSpec
from flashtui.core.variants import layout_for
from flashtui.engine import variants as vp
from flashtui.engine.backends import REGISTRY, TORCH_DTYPES, Backend, DeviceInfo, Shape
from flashtui.engine.kernel import forced_kernel_refusal, one_line
from flashtui.engine.memory import is_oom, is_poisoned, release
from flashtui.engine.parity import chunked_attention, real_rows
from flashtui.engine.timing import judge, time_calls

PROBE_DTYPES = ("fp32", "fp16", "bf16")
PROBE_HEAD_DIMS = (64, 128, 256)
# The tiny problem every matrix cell runs: big enough for real kernels (flex needs
# seq >= 128), small enough that 81 cells cost well under a second outside compiles.
PROBE_BATCH, PROBE_HEADS, PROBE_SEQ = 1, 2, 128
# Backends whose every new shape costs seconds of compilation.
COMPILE_HEAVY = ("flex", "fa4")
# Probed last, so the quick answers come first, each saying why it takes long (first use).
SLOW_LAST = {"sdpa-cudnn": "first cuDNN use loads its kernels", "flex": "torch.compile compiles it",
             "fa4": "imports the CuTe DSL and compiles the kernel"}
# A cell whose forward is further than this from the fp64 reference (max abs error on
# outputs of magnitude ~1) did not compute attention. Generous on purpose: it catches
# a wrong mask or garbage, not rounding (TF32 and bf16 stay far below).
FORWARD_TOLERANCE = {"fp32": 2e-2, "fp16": 2e-2, "bf16": 6e-2}
# Backward: max abs error of dq, dk, dv relative to the reference's largest gradient.
BACKWARD_REL_TOLERANCE = 0.25
# The short "fastest here" probe: shape, warm-up and reps.
FASTEST_SHAPE_CUDA = dict(batch=1, heads=16, seq=4096, head_dim=128)
FASTEST_SHAPE_CPU = dict(batch=1, heads=4, seq=256, head_dim=64)
FASTEST_REPS = 10
FASTEST_WARMUP_MS = 25.0
# Capacity search.
CAPACITY_START_SEQ = 1024
CAPACITY_CAP_CUDA = 1 << 20
CAPACITY_CAP_CPU = 8192
CAPACITY_ROW_BUDGET_S = 120.0
# Substrings of PyTorch's refusal when a forced SDPA kernel cannot run this input.
# Sticky CUDA errors: after one, every later cell in this process fails too.

Progress = Callable[[str], None]
CellSink = Callable[[dict[str, Any], int, int], None]  # cell, its index, cells in all


def _sync(device: DeviceInfo) -> None:
    if device.kind == "cuda":
        torch.cuda.synchronize()


def _typical_dtype(device: DeviceInfo) -> str:
    """The dtype people run attention in here: bf16 on Ampere+, fp16 before, fp32 on CPU."""
    if device.kind != "cuda":
        return "fp32"
    return "bf16" if device.cc >= 8.0 else "fp16"


# ------------------------------------------------------------------ one probed cell
def _run_cell(backend: Backend, shape: Shape, device: DeviceInfo, backward: bool,
              registry_reason: str | None) -> dict[str, Any]:
    """Run one tiny cell for real and judge it against fp64. Never raises."""
    cell: dict[str, Any] = {"backend": backend.name, "dtype": shape.dtype, "head_dim": shape.head_dim,
                            "status": "ok", "reason": None, "note": None, "max_abs_err": None,
                            "backward": None}
    if (shape.batch, shape.heads, shape.seq) != (PROBE_BATCH, PROBE_HEADS, PROBE_SEQ):
        cell["shape"] = {"batch": shape.batch, "heads": shape.heads, "seq": shape.seq}  # not the matrix's
    gen = torch.Generator(device=device.kind)
    gen.manual_seed(1234 + shape.head_dim)
    dtype = TORCH_DTYPES[shape.dtype]

    def randn() -> torch.Tensor:
        return torch.randn(shape.batch, shape.heads, shape.seq, shape.head_dim, generator=gen,
                           device=device.kind, dtype=torch.float32).to(dtype)

    try:
        q, k, v, dout = randn(), randn(), randn(), randn()
        bwd_shape = dataclasses.replace(shape, backward=backward)
        prepared = backend.prepare(q, k, v, bwd_shape)
        refused = backend.refusal(prepared, bwd_shape)
        if refused:  # PyTorch's own verdict, the same words a sweep's cell gets
            cell["status"], cell["reason"] = "unsupported", refused
            return cell
        with prepared.context():
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    out = prepared.forward()
                    _sync(device)
                except Exception as exc:  # noqa: BLE001 - every failure is the cell's answer
                    refused = forced_kernel_refusal(exc, caught, backend.name)
                    if refused is None:
                        raise
                    cell["status"], cell["reason"] = "unsupported", refused
                    if registry_reason:
                        cell["note"] = f"flashtui's registry agrees: {registry_reason}"
                    return cell
            if registry_reason:
                cell["note"] = f"runs, though flashtui's registry refuses it: {registry_reason}"
            ref_out, ref_grads = chunked_attention(*(t.detach().double() for t in (q, k, v)), True,
                                                  q.shape[2], dout.double())
            err = (prepared.to_bhsd(out).double() - ref_out).abs().max().item()
            cell["max_abs_err"] = err if math.isfinite(err) else None
            tolerance = FORWARD_TOLERANCE[shape.dtype]
            if not (math.isfinite(err) and err <= tolerance):
                cell["status"] = "failed"
                cell["reason"] = (f"ran but the output is wrong: max abs error {err:.3g} vs an fp64 "
                                  f"reference (tolerance {tolerance:g})")
                return cell
            if backward:
                cell["backward"] = _run_backward(backend, prepared, out, dout, ref_grads)
    except Exception as exc:  # noqa: BLE001
        cell["status"] = "failed"
        cell["reason"] = one_line(exc)
        if registry_reason:
            cell["note"] = f"flashtui's registry refuses it too: {registry_reason}"
    return cell


def _run_backward(backend: Backend, prepared, out: torch.Tensor, dout: torch.Tensor,
                  ref_grads) -> dict[str, Any]:
    try:
        dout_layout = dout.transpose(1, 2).contiguous() if backend.layout == "bshd" else dout
        grads = torch.autograd.grad(out, prepared.inputs, dout_layout)
        worst = 0.0
        for grad, ref in zip(grads, ref_grads):
            scale = ref.abs().max().item() or 1.0
            worst = max(worst, (prepared.to_bhsd(grad).double() - ref).abs().max().item() / scale)
        if not (math.isfinite(worst) and worst <= BACKWARD_REL_TOLERANCE):
            return {"status": "failed", "max_rel_err": worst if math.isfinite(worst) else None,
                    "reason": f"gradients are wrong: max error {worst:.3g} of the largest reference "
                              f"gradient (tolerance {BACKWARD_REL_TOLERANCE:g})"}
        return {"status": "ok", "max_rel_err": worst, "reason": None}
    except Exception as exc:  # noqa: BLE001
        return {"status": "failed", "max_rel_err": None, "reason": one_line(exc)}


def _not_probed(backend: Backend, shape: Shape, reason: str) -> dict[str, Any]:
    return {"backend": backend.name, "dtype": shape.dtype, "head_dim": shape.head_dim,
            "status": "not_probed", "reason": reason, "note": None, "max_abs_err": None,
            "backward": None}


# ------------------------------------------------------------------ the matrix
def probe_matrix(device: DeviceInfo, progress: Progress = lambda text: None, *,
                 full: bool = False, backward: bool = True, on_cell: CellSink | None = None,
                 backends: tuple[str, ...] | None = None,
                 dtypes: tuple[str, ...] = PROBE_DTYPES,
                 head_dims: tuple[int, ...] = PROBE_HEAD_DIMS) -> dict[str, Any]:
    """The capability matrix: every backend x dtype x head_dim, each cell really run.

    ``on_cell`` gets each cell as it is decided (the doctor fills in live). The slow
    backends (:data:`SLOW_LAST`) run last; the result lists everything in registry order.
    """
    names = backends or tuple(REGISTRY)
    slow = list(SLOW_LAST)
    run_order = sorted(names, key=lambda n: slow.index(n) + 1 if n in slow else 0)
    typical = _typical_dtype(device)
    cells: list[dict[str, Any]] = []
    n_cells = len(names) * len(dtypes) * len(head_dims)

    def add(cell: dict[str, Any]) -> None:
        cells.append(cell)
        if on_cell is not None:
            on_cell(cell, len(cells) - 1, n_cells)
    per_backend: dict[str, dict[str, Any]] = {}
    poisoned: str | None = None
    for name in run_order:
        backend = REGISTRY[name]
        started = time.perf_counter()
        available, why_not = backend.availability(device)
        ran = 0
        for dtype in dtypes:
            for head_dim in head_dims:
                shape = Shape(PROBE_BATCH, PROBE_HEADS, PROBE_HEADS, PROBE_SEQ, head_dim, dtype,
                              causal=True, backward=False)
                if not available:
                    add({**_not_probed(backend, shape, why_not), "status": "unsupported"})
                    continue
                ok, reason = backend.supports_shape(shape, device)
                if not ok and backend.family != "sdpa":
                    add({**_not_probed(backend, shape, reason), "status": "unsupported"})
                    continue
                if poisoned:
                    add(_not_probed(backend, shape, f"not probed: an earlier cell poisoned "
                                                    f"the CUDA context ({poisoned})"))
                    continue
                heavy = name in COMPILE_HEAVY
                if heavy and not full and (dtype != typical or head_dim != 128):
                    add(_not_probed(backend, shape, (
                        f"not probed: {name} compiles each new shape for seconds; the quick probe "
                        f"checks {typical} at head_dim 128 only (flashtui doctor --full checks all)")))
                    continue
                if heavy and not full and device.kind == "cuda" and head_dim == FASTEST_SHAPE_CUDA["head_dim"]:
                    # Its one quick cell runs at the "fastest here" shape: one compile serves
                    # both (fa4 at B=1 H=2 S=128 and at the timing's shape are two compiles;
                    # the second took 3.76 s on the H200). Forward only, checked against fp64.
                    dims = FASTEST_SHAPE_CUDA
                    shape = dataclasses.replace(shape, batch=dims["batch"], heads=dims["heads"],
                                                kv_heads=dims["heads"], seq=dims["seq"])
                why_slow = f" ({SLOW_LAST[name]} on first use: seconds)" if name in SLOW_LAST else ""
                progress(f"probing {name} {dtype} head_dim={head_dim}{why_slow}")
                cell = _run_cell(backend, shape, device, backward=backward and (full or not heavy),
                                 registry_reason=None if ok else reason)
                ran += 1
                add(cell)
                if cell["status"] == "failed" and is_poisoned(cell["reason"]):
                    poisoned = cell["reason"]
                # No release() per cell: tiny cells leave nothing worth a gc pass (~0.1 s each).
        if ran:
            release(device.kind)
        per_backend[name] = {"available": available, "reason": why_not, "cells_run": ran,
                             "seconds": round(time.perf_counter() - started, 3)}
    # Registry order in the answer, whatever order the cells ran in.
    rank = {n: i for i, n in enumerate(names)}
    cells.sort(key=lambda c: rank[c["backend"]])
    per_backend = {n: per_backend[n] for n in names}
    return {
        "shape": {"batch": PROBE_BATCH, "heads": PROBE_HEADS, "seq": PROBE_SEQ, "causal": True,
                  "pass": "forward + backward" if backward else "forward"},
        "dtypes": list(dtypes), "head_dims": list(head_dims), "full": full,
        "device": {"kind": device.kind, "name": device.name,
                   "compute_capability": f"{device.capability[0]}.{device.capability[1]}"
                   if device.capability else None},
        "backends": per_backend, "cells": cells,
        "poisoned": poisoned,
    }


# ------------------------------------------------------------------ variants
# One tiny case per variant (B=2 H=2 S=128 D=64 causal, forward): the doctor's variant rows.
VARIANT_PROBES: dict[str, dict[str, Any]] = {
    "window": {"window": 48}, "softcap": {"softcap": 20.0}, "docs": {"docs": 3}, "pad": {"pad": 0.25},
    "decode": {"q_len": 1}, "paged": {"q_len": 1, "page_size": 32},
}
VARIANT_BATCH, VARIANT_HEAD_DIM = 2, 64


def _variant_layout(name: str):
    fields = dict(window=None, softcap=None, docs=None, pad=None, q_len=None, page_size=None)
    fields.update(VARIANT_PROBES[name])
    return layout_for(SimpleNamespace(batch=VARIANT_BATCH, causal=True, seed=0, **fields), PROBE_SEQ)


def _variant_cell(backend: Backend, name: str, device: DeviceInfo, dtype: str, full: bool) -> dict[str, Any]:
    """How ``backend`` runs variant ``name``: its plan, then (unless compile-heavy in quick mode)
    a tiny run checked against the fp64 oracle with the same variant. Never raises."""
    layout = _variant_layout(name)
    shape = Shape(VARIANT_BATCH, PROBE_HEADS, PROBE_HEADS, PROBE_SEQ, VARIANT_HEAD_DIM, dtype,
                  causal=True, backward=False, layout=layout)
    plan = vp.plan(backend.name, layout)
    cell: dict[str, Any] = {"backend": backend.name, "variant": name, "path": plan.path, "how": plan.how,
                            "status": "ok", "reason": None, "max_abs_err": None}
    ok, reason = backend.supports(shape, device)
    if not ok:
        cell.update(status="unsupported", path=vp.NO, reason=reason)
        return cell
    if backend.name in COMPILE_HEAVY and not full:
        cell.update(status="not_probed", reason=f"not probed: {backend.name} compiles each variant for "
                                                "seconds (flashtui doctor --full runs it)")
        return cell
    gen = torch.Generator(device=device.kind)
    gen.manual_seed(4321)

    def randn(rows: int) -> torch.Tensor:
        return torch.randn(VARIANT_BATCH, PROBE_HEADS, rows, VARIANT_HEAD_DIM, generator=gen,
                           device=device.kind, dtype=torch.float32).to(TORCH_DTYPES[dtype])

    try:
        q, k, v = randn(layout.q_len), randn(PROBE_SEQ), randn(PROBE_SEQ)
        prepared = backend.prepare(q, k, v, shape)
        refused = backend.refusal(prepared, shape)
        if refused:
            cell.update(status="unsupported", path=vp.NO, reason=refused)
            return cell
        with prepared.context(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                out = prepared.forward()
                _sync(device)
            except Exception as exc:  # noqa: BLE001
                refused = forced_kernel_refusal(exc, caught, backend.name)
                if refused is None:
                    raise
                cell.update(status="unsupported", path=vp.NO, reason=refused)
                return cell
        valid = vp.query_valid(layout, q.device)
        ref, _ = chunked_attention(*(t.double() for t in (q, k, v)), True, layout.q_len, layout=layout)
        err = (real_rows(prepared.to_bhsd(out).double(), valid) - real_rows(ref, valid)).abs().max().item()
        cell["max_abs_err"] = err if math.isfinite(err) else None
        if not (math.isfinite(err) and err <= FORWARD_TOLERANCE[dtype]):
            cell.update(status="failed", reason=f"ran but the output is wrong: max abs error {err:.3g} vs "
                                                f"the fp64 reference with the same variant")
    except Exception as exc:  # noqa: BLE001
        cell.update(status="unsupported" if isinstance(exc, vp.SignatureMismatch) else "failed",
                    reason=one_line(exc))
    return cell


def probe_variants(device: DeviceInfo, matrix: dict[str, Any], progress: Progress = lambda text: None,
                   *, full: bool = False) -> dict[str, Any]:
    """Backend x variant: native, through a mask, or not at all -- run for real where cheap."""
    dtype = _typical_dtype(device)
    cells = []
    for name, info in matrix["backends"].items():
        if not info["available"]:
            continue
        backend = REGISTRY[name]
        for variant in VARIANT_PROBES:
            progress(f"probing {name} {variant}")
            cells.append(_variant_cell(backend, variant, device, dtype, full))
        release(device.kind)
    return {"variants": list(VARIANT_PROBES), "cases": {k: dict(v) for k, v in VARIANT_PROBES.items()},
            "shape": {"batch": VARIANT_BATCH, "heads": PROBE_HEADS, "seq": PROBE_SEQ,
                      "head_dim": VARIANT_HEAD_DIM, "dtype": dtype, "causal": True, "pass": "forward"},
            "cells": cells}


# ------------------------------------------------------------------ fastest here
def _fastest_setup(device: DeviceInfo, matrix: dict[str, Any]) -> tuple[dict[str, int], str, Shape, set[str]]:
    """The "fastest here" shape, its dtype, and the backends the matrix saw run there."""
    dims = FASTEST_SHAPE_CUDA if device.kind == "cuda" else FASTEST_SHAPE_CPU
    dtype = _typical_dtype(device)
    shape = Shape(dims["batch"], dims["heads"], dims["heads"], dims["seq"], dims["head_dim"], dtype,
                  causal=True, backward=False)
    ran = {c["backend"] for c in matrix.get("cells", [])
           if c["dtype"] == dtype and c["head_dim"] == dims["head_dim"] and c["status"] == "ok"}
    return dims, dtype, shape, ran


def prime_fastest(device: DeviceInfo, matrix: dict[str, Any],
                  progress: Progress = lambda text: None) -> dict[str, float]:
    """One untimed call per backend at the "fastest here" shape: its compile (flex, fa4:
    seconds each at a new shape) and first-use costs, paid now. A parallel doctor primes
    in every worker at once, so the timing afterwards, one worker at a time, times warm
    kernels and waits for no compiler. Seconds per backend; a failure is left for the
    timing to report."""
    _, _, shape, ran = _fastest_setup(device, matrix)
    seconds: dict[str, float] = {}
    gen = torch.Generator(device=device.kind)
    gen.manual_seed(0)
    for name in [n for n in matrix.get("backends", {}) if n in ran]:
        started = time.perf_counter()
        progress(f"compiling {name} for the short timing" if name in COMPILE_HEAVY
                 else f"first call of {name} for the short timing")
        try:
            inputs = tuple(torch.randn(shape.batch, shape.heads, shape.seq, shape.head_dim, generator=gen,
                                       device=device.kind, dtype=torch.float32).to(TORCH_DTYPES[shape.dtype])
                           for _ in range(3))
            prepared = REGISTRY[name].prepare(*inputs, shape)
            with prepared.context():
                prepared.forward()
            _sync(device)
        except Exception:  # noqa: BLE001 - the timing runs it again and says what failed
            release(device.kind)
            continue
        finally:
            inputs = prepared = None  # type: ignore[assignment]
        seconds[name] = round(time.perf_counter() - started, 3)
    release(device.kind)
    return seconds


def probe_fastest(device: DeviceInfo, matrix: dict[str, Any],
                  progress: Progress = lambda text: None) -> dict[str, Any]:
    """A short timed probe of every backend the matrix saw run, at one typical shape.

    Few reps after a short warm-up: good enough to rank, not to quote. Backends the
    matrix did not see run at this dtype and head_dim are left out (listed with why).
    """
    dims, dtype, shape, ran = _fastest_setup(device, matrix)
    label = (f"short probe: {FASTEST_REPS} reps after ~{FASTEST_WARMUP_MS:g} ms warm-up, "
             f"B={shape.batch} H={shape.heads} S={shape.seq} D={shape.head_dim} {dtype} causal forward "
             f"on {device.name}; a hint, not a benchmark (flashtui bench measures properly)")
    rows: list[dict[str, Any]] = []
    gen = torch.Generator(device=device.kind)
    gen.manual_seed(0)
    inputs = None
    for name, info in matrix["backends"].items():
        if not info["available"]:
            continue
        backend = REGISTRY[name]
        row: dict[str, Any] = {"backend": name, "status": "ok", "median_ms": None, "iqr_ms": None,
                               "reps": None, "speedup_vs_standard": None, "seconds": None, "reason": None,
                               "noisy": False, "noise_reason": None}
        if name not in ran:
            row["status"] = "skipped"
            row["reason"] = f"did not run {dtype} head_dim {dims['head_dim']} in the matrix"
            rows.append(row)
            continue
        started = time.perf_counter()
        progress(f"timing {name} (short probe)")
        try:
            if inputs is None:
                inputs = tuple(torch.randn(shape.batch, shape.heads, shape.seq, shape.head_dim,
                                           generator=gen, device=device.kind, dtype=torch.float32)
                               .to(TORCH_DTYPES[dtype]) for _ in range(3))
            prepared = backend.prepare(*inputs, shape)
            with prepared.context():
                # A ranking probe: one round, loop time only (the sweep measures properly).
                timing = time_calls(prepared.forward, device.kind, FASTEST_REPS, FASTEST_WARMUP_MS,
                                    device_time=False, remeasure=False)
            noisy, noise_reason = judge(timing, device.kind, rounds=1)
            row.update(median_ms=timing.median_ms, iqr_ms=timing.iqr_ms, reps=timing.reps,
                       noisy=noisy, noise_reason=noise_reason)
        except Exception as exc:  # noqa: BLE001
            row["status"] = "oom" if is_oom(exc) else "failed"
            row["reason"] = one_line(exc)
            release(device.kind)
        row["seconds"] = round(time.perf_counter() - started, 3)
        rows.append(row)
    inputs = None
    release(device.kind)
    # Speedups over standard; only a steady timing may be named fastest (core.doctor_merge,
    # which ranks a parallel probe's rows the same way).
    fastest, noisy_rows = rank_fastest(rows)
    return {"noisy_backends": noisy_rows, "label": label, "shape": {**dims, "dtype": dtype, "causal": True, "pass": "forward"},
            "reps": FASTEST_REPS, "warmup_ms": FASTEST_WARMUP_MS, "rows": rows, "fastest": fastest}


# ------------------------------------------------------------------ advice
def _build_tags(provenance: dict[str, Any]) -> dict[str, str | None]:
    """The tags a flash-attn wheel must match: torch major.minor, CUDA major, cp tag, C++ ABI."""
    torch_version = str(provenance.get("torch") or torch.__version__).split("+")[0]
    torch_mm = ".".join(torch_version.split(".")[:2])
    cuda = provenance.get("cuda_runtime") if "cuda_runtime" in provenance else torch.version.cuda
    python = str(provenance.get("python") or sys.version.split()[0])
    cp = "cp" + "".join(python.split(".")[:2])
    try:
        abi = "TRUE" if torch._C._GLIBCXX_USE_CXX11_ABI else "FALSE"
    except AttributeError:
        abi = None
    return {"torch": torch_mm, "cuda": str(cuda) if cuda else None,
            "cuda_major": str(cuda).split(".")[0] if cuda else None, "cp": cp, "cxx11abi": abi}


def _why_no_gpu(provenance: dict[str, Any]) -> str:
    """Torch CPU build / driver absent / no GPU visible, in one sentence."""
    if provenance.get("cuda_runtime") is None:
        gpu_hint = (" although an NVIDIA driver is loaded: install a CUDA build of torch "
                    "(pip install torch --index-url https://download.pytorch.org/whl/cu128, "
                    "matching your driver)" if os.path.exists("/proc/driver/nvidia/version") else "")
        return f"this torch ({provenance.get('torch')}) is a CPU-only build{gpu_hint}"
    if not os.path.exists("/proc/driver/nvidia/version") and sys.platform.startswith("linux"):
        return "torch has CUDA support but no NVIDIA driver is loaded (no /proc/driver/nvidia)"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU"
    return provenance.get("cuda_unavailable_reason") or "torch sees no CUDA GPU"


def advice(provenance: dict[str, Any], backends: dict[str, dict[str, Any]],
           device: DeviceInfo, matrix: dict[str, Any] | None = None) -> list[str]:
    """Sentences a user can act on, most useful first. Pure: derived from the arguments."""
    out: list[str] = []
    available = {name for name, info in backends.items() if info.get("available")}
    if device.kind != "cuda":
        out.append(cpu_line((matrix or {}).get("cells", []), list(REGISTRY), _why_no_gpu(provenance)))
        out.append("flash-attn (FA2/FA3/FA4) needs an NVIDIA GPU (Ampere or newer); on a GPU box run "
                   "`flashtui doctor` again for the exact install command.")
        return out
    tags = _build_tags(provenance)
    cc = device.cc
    if cc and cc < 8.0:
        out.append(f"bf16 needs compute capability >= 8.0 (Ampere); this GPU is {cc:g}: use fp16. "
                   "FlashAttention-2 kernels (fa2, sdpa-flash) need >= 8.0 too.")
    if "fa2" not in available and cc >= 8.0:
        wheel = (f"flash_attn-<version>+cu{tags['cuda_major']}torch{tags['torch']}cxx11abi{tags['cxx11abi']}"
                 f"-{tags['cp']}-{tags['cp']}-linux_x86_64.whl")
        out.append(f"flash-attn (FA2) is not installed: pip install flash-attn --no-build-isolation "
                   f"-- the build must match torch {tags['torch']}, CUDA {tags['cuda']} and {tags['cp']} "
                   f"(a prebuilt wheel is named like {wheel} on "
                   "https://github.com/Dao-AILab/flash-attention/releases; without one pip compiles "
                   "for tens of minutes: set MAX_JOBS=4 if RAM is short).")
    if device.capability and device.capability != (9, 0):
        out.append(f"FA3 needs Hopper (sm90); this GPU is sm{device.capability[0]}{device.capability[1]}, "
                   "so fa3 is out here" + (": use fa4 or sdpa-cudnn" if device.capability[0] >= 10 else "") + ".")
    elif "fa3" not in available:
        out.append("FA3 (Hopper) is not installed: git clone https://github.com/Dao-AILab/flash-attention "
                   "&& cd flash-attention/hopper && python setup.py install "
                   f"(builds against this torch {tags['torch']} / CUDA {tags['cuda']}).")
    if device.capability and device.capability[0] in (9, 10, 11) and "fa4" not in available:
        out.append("flash-attn-4 (CuTe DSL, Hopper/Blackwell) is not installed: pip install flash-attn-4")
    if "fa4" in available:
        out.append("fa4 imports in ~10 s and compiles each new shape for a few seconds on first use: "
                   "warm it up before timing (flashtui bench does).")
    for c in (matrix or {}).get("cells", []):
        if c.get("note") and c["note"].startswith("runs, though"):
            out.append(f"{c['backend']} {c['dtype']} head_dim {c['head_dim']} runs although flashtui's "
                       "registry refuses it: the registry is stricter than this PyTorch (worth a bug report).")
            break
    return out


# ------------------------------------------------------------------ entry point
def probe(device: DeviceInfo, provenance: dict[str, Any], backends: dict[str, dict[str, Any]],
          progress: Progress = lambda text: None, fastest: bool = True,
          full: bool | None = None, on_cell: CellSink | None = None,
          names: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Matrix + fastest-here + advice for the worker's device (the ``Probe`` request).

    ``full``: probe every cell of compile-heavy backends too (slow); None reads the
    environment variable FLASHTUI_PROBE_FULL, so a client can ask for it at start-up.
    ``names``: probe just those backends (the doctor's parallel probe gives each worker
    its share; core.doctor_merge joins the answers). ``backends`` is every backend's
    availability, as the worker found it at start-up.
    """
    started = time.perf_counter()
    if full is None:
        full = os.environ.get("FLASHTUI_PROBE_FULL", "") not in ("", "0")
    # Tiny cells gain nothing from intra-op threads, and on a busy CPU OpenMP's
    # synchronization makes them ~10x slower; the timed probe below uses them all again.
    threads = torch.get_num_threads()
    if device.kind != "cuda":
        torch.set_num_threads(1)
    try:
        matrix = probe_matrix(device, progress, full=full, on_cell=on_cell, backends=names)
    finally:
        torch.set_num_threads(threads)
    fastest_result = None
    if fastest and not matrix["poisoned"]:
        fastest_result = probe_fastest(device, matrix, progress)
    variant_rows = None if matrix["poisoned"] else probe_variants(device, matrix, progress, full=full)
    return {
        "device": matrix["device"], "matrix": matrix, "fastest": fastest_result, "variants": variant_rows,
        "advice": advice(provenance, backends, device, matrix),
        "seconds": round(time.perf_counter() - started, 3),
        # On the CPU, why there is no GPU (a parallel probe rebuilds the CPU line from it).
        "no_gpu_reason": _why_no_gpu(provenance) if device.kind != "cuda" else None,
    }


# ------------------------------------------------------------------ capacity
# Out-of-memory in other words: the CPU allocator, and cuBLAS/cuDNN failing to get a
# workspace when the caching allocator has handed everything out.
_OTHER_OOM = ("can't allocate memory", "CUBLAS_STATUS_ALLOC_FAILED", "CUDNN_STATUS_ALLOC_FAILED")


def _is_oom(exc: BaseException) -> bool:
    """CUDA's OOM (engine.memory.is_oom) or the same thing in other words (_OTHER_OOM)."""
    return is_oom(exc) or any(s in str(exc) for s in _OTHER_OOM)


def _try_once(backend: Backend, shape: Shape, device: DeviceInfo) -> tuple[bool, str | None, bool]:
    dtype = TORCH_DTYPES[shape.dtype]
    try:
        q, k, v = (torch.randn(shape.batch, heads, shape.seq, shape.head_dim, device=device.kind, dtype=dtype)
                   for heads in (shape.heads, shape.kv_heads, shape.kv_heads))
        prepared = backend.prepare(q, k, v, shape)
        del q, k, v
        with prepared.context():
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    out = prepared.forward()
                    if shape.backward:
                        torch.autograd.grad(out, prepared.inputs, torch.ones_like(out))
                    _sync(device)
                except Exception as exc:  # noqa: BLE001
                    refused = forced_kernel_refusal(exc, caught, backend.name)
                    if refused is not None:
                        return False, refused, False
                    raise
        return True, None, False
    except Exception as exc:  # noqa: BLE001 - an OOM is the answer we are looking for
        return False, one_line(exc, 200), _is_oom(exc)


def _fits(backend: Backend, shape: Shape, device: DeviceInfo) -> tuple[bool, str | None, bool]:
    """One try: allocate q, k, v and run one call. (fits, reason, was_oom).

    The work happens in :func:`_try_once` so that its frame -- and with it every tensor
    and the exception's traceback -- is gone before the memory is released here.
    """
    try:
        return _try_once(backend, shape, device)
    finally:
        release(device.kind)


def _granularity(seq: int) -> int:
    return 256 if seq >= 4096 else 64


def _capacity_row(backend: Backend, spec: SweepSpec, dtype: str, device: DeviceInfo, start: int,
                  cap: int, progress: Progress, should_stop: Callable[[], bool]) -> dict[str, Any]:
    row: dict[str, Any] = {"backend": backend.name, "dtype": dtype, "max_seq_fit": None,
                           "first_oom_seq": None, "tries": 0, "seconds": None, "limit": None,
                           "reason": None}
    started = time.perf_counter()

    def shape(seq: int) -> Shape:
        return Shape(spec.batch, spec.heads, spec.effective_kv_heads, seq, spec.head_dim, dtype,
                     spec.causal, spec.backward)

    ok, reason = backend.supports(shape(start), device)
    if not ok:
        row.update(limit="unsupported", reason=reason, seconds=0.0)
        return row
    fit: int | None = None
    too_big: int | None = None  # the smallest seq known not to fit
    failure: str | None = None

    def attempt(seq: int) -> bool | None:
        """True fits, False does not (OOM), None: stop (error, cancel, budget)."""
        nonlocal failure, too_big
        if should_stop():
            row["limit"], failure = "cancelled", "cancelled"
            return None
        if time.perf_counter() - started > CAPACITY_ROW_BUDGET_S:
            row["limit"], failure = "budget", f"stopped after {CAPACITY_ROW_BUDGET_S:g} s (time budget)"
            return None
        progress(f"capacity {backend.name} {dtype} seq={seq}")
        row["tries"] += 1
        fits, why, oom = _fits(backend, shape(seq), device)
        if fits:
            return True
        if oom:
            too_big = seq if too_big is None else min(too_big, seq)
            row["first_oom_seq"] = too_big
            return False
        row["limit"], failure = "error", f"failed at seq={seq}: {why}"
        return None

    # Grow: double from the start until OOM or the cap.
    seq = start
    result = attempt(seq)
    while result is True:
        fit = seq
        if seq >= cap:
            break
        seq = min(seq * 2, cap)
        result = attempt(seq)
    # The start itself did not fit: halve down to find any fit.
    while result is False and fit is None and seq > 64:
        seq = max(64, seq // 2)
        result = attempt(seq)
        if result is True:
            fit = seq
    # Bisect between the last fit and the first OOM.
    while result is not None and fit is not None and too_big is not None \
            and too_big - fit > _granularity(fit):
        step = _granularity(fit)
        mid = (fit + too_big) // 2 // step * step
        if mid <= fit:
            break
        result = attempt(mid)
        if result is True:
            fit = mid
    row["max_seq_fit"] = fit
    row["seconds"] = round(time.perf_counter() - started, 3)
    if failure is not None:
        row["reason"] = failure + ("" if fit is None else f"; {fit} is a lower bound")
    elif too_big is None and fit is not None:
        row["limit"] = "cap"
        row["reason"] = (f"reached the search cap seq={cap} without running out of memory"
                         + ("; on CPU the cap is low on purpose, host memory is not the limit searched"
                            if device.kind != "cuda" else ""))
    elif fit is None:
        row["limit"] = "oom"
        row["reason"] = f"out of memory even at seq={seq}"
    else:
        row["limit"] = "oom"
        row["reason"] = f"out of memory at seq={too_big}; resolved to {_granularity(fit)} tokens"
    return row


def capacity(spec: SweepSpec, device: DeviceInfo, progress: Progress = lambda text: None,
             should_stop: Callable[[], bool] = lambda: False) -> dict[str, Any]:
    """The longest sequence each backend fits for the spec's shape, per dtype.

    ``spec.seqs[0]`` is where the doubling starts; a second entry, when given, is the
    cap (default 2^20 on CUDA, 8192 on CPU, where memory is not what is being found).
    One forward call per try (forward+backward when ``spec.backward``) on freshly
    allocated q, k, v; memory is released between tries. What fits alone may not fit
    beside a model: this is the attention call's own ceiling on an empty GPU.
    """
    started = time.perf_counter()
    start = spec.seqs[0] if spec.seqs else CAPACITY_START_SEQ
    default_cap = CAPACITY_CAP_CUDA if device.kind == "cuda" else CAPACITY_CAP_CPU
    cap = spec.seqs[-1] if len(spec.seqs) > 1 else max(default_cap, start)
    cap = max(cap, start)
    names = spec.backends or tuple(n for n in REGISTRY if REGISTRY[n].availability(device)[0])
    rows = []
    for name in names:
        for dtype in spec.dtypes:
            if should_stop():
                break
            rows.append(_capacity_row(REGISTRY[name], spec, dtype, device, start, cap, progress, should_stop))
    total_bytes = None
    if device.kind == "cuda":
        _free, total_bytes = torch.cuda.mem_get_info()
    return {
        "spec": spec.to_dict(),
        "device": {"kind": device.kind, "name": device.name, "total_memory_bytes": total_bytes},
        "start_seq": start, "cap_seq": cap,
        "pass": "forward+backward" if spec.backward else "forward",
        "method": ("double from start_seq until out of memory or cap_seq, then bisect between the "
                   "last fit and the first OOM (to 64 tokens below 4096, 256 above); one call per try "
                   "on fresh inputs, memory released between tries"),
        "rows": rows, "seconds": round(time.perf_counter() - started, 3),
    }
