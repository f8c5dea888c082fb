"""The result schema: what a measured cell and a session contain, as plain data.

Pure Python (no torch, no textual): the worker fills cells, the client, exports and
TUI read them. Field names are part of the public JSON interface (docs/schema.md);
add fields freely, never rename or repurpose one without bumping SCHEMA_VERSION.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from flashtui.core.spec import CellKey

SCHEMA_NAME = "flashtui.session"
SCHEMA_VERSION = 1

STATUSES = ("ok", "oom", "unsupported", "failed")
# FlashAttention's own tests pass a kernel whose error is at most twice the error of
# the reference implementation run in the same low precision.
PARITY_RATIO_LIMIT = 2.0


# A call this long whose host time matches it is the host waiting on the GPU, not launching.
HOST_WAITS_MS = 10.0

@dataclass
class Parity:
    """Error of one backend's output against an fp64 oracle on the same inputs."""

    reference: str = "fp64"
    max_abs: float | None = None
    mean_abs: float | None = None
    rel_l2: float | None = None
    # rel_l2 of `standard` run in the same dtype on the same inputs: the dtype's own error.
    standard_rel_l2: float | None = None
    ratio_vs_standard: float | None = None
    passed: bool | None = None
    # Set when parity could not be computed (e.g. oracle does not fit): why.
    reason: str | None = None
    # Forward+backward: the same metrics per gradient ("dq", "dk", "dv").
    grads: dict[str, dict[str, Any]] | None = None
    # Distribution of |out - reference| (engine.parity.abs_diff_distribution), and the
    # same for `standard` in this dtype: does the backend err like the dtype itself does?
    abs_diff: dict[str, Any] | None = None
    standard_abs_diff: dict[str, Any] | None = None


@dataclass
class Cell:
    """One backend at one sequence length and dtype."""

    backend: str
    seq: int
    dtype: str
    status: str = "ok"
    reason: str | None = None
    median_ms: float | None = None
    iqr_ms: float | None = None
    min_ms: float | None = None
    reps: int | None = None
    # Median host wall time of one call returning to Python (launch cost), beside device time.
    host_ms: float | None = None
    # The kernels' own time per call (CUDA): graph replay or profiler kernel durations.
    # median_ms is what a Python loop sees; speedups use median_ms. They differ when launch-bound.
    device_ms: float | None = None
    device_ms_method: str | None = None  # "cuda-graph" | "profiler" | None
    # Per-rep (per-block) times the median and IQR come from, so diff can judge overlap.
    samples_ms: list[float] | None = None
    # Spread or host conditions made this timing untrustworthy: one sentence of why.
    noisy: bool | None = None
    noise_reason: str | None = None
    # FLOPs of one call for this variant (window, causal, documents, q-len: the pairs it
    # visits, flashtui.core.variants), and the TFLOP/s and % of dense peak they give.
    flops: float | None = None
    tflops: float | None = None
    pct_peak: float | None = None
    # Least HBM traffic of one call (q, k, v read once, o written once; decode: the KV
    # cache), the GB/s it gives and its share of the GPU's HBM peak.
    bytes: int | None = None
    gbps: float | None = None
    pct_bw_peak: float | None = None
    # "memory" (judge on gbps: decode) or "compute" (judge on tflops), from FLOPs per byte
    # against the GPU's ridge point (flashtui.core.variants.judged_on); None: not judged.
    bound: str | None = None
    speedup_vs_standard: float | None = None
    # Allocator peak during one call minus the baseline with inputs already resident.
    peak_alloc_bytes: int | None = None
    reserved_bytes: int | None = None
    # What the backend must materialize by construction (S x S scores for standard).
    theory_bytes: int | None = None
    parity: Parity | None = None
    # Wall time the whole cell took in the worker (warm-up, reps, parity).
    duration_s: float | None = None
    # GPU kernels seen running this backend (proof of dispatch) and whether they match.
    kernels: list[str] | None = None
    dispatch_ok: bool | None = None
    # Clocks/power seen during the timed region (from the client's NVML sampler).
    telemetry: dict[str, Any] | None = None
    # Mode-specific extras (model mode: tokens_per_s, ms_per_token, ...).
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Cell":
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        parity = kwargs.get("parity")
        if isinstance(parity, dict):
            parity_known = {f.name for f in fields(Parity)}
            kwargs["parity"] = Parity(**{k: v for k, v in parity.items() if k in parity_known})
        return cls(**kwargs)

    @property
    def key(self) -> CellKey:
        return CellKey(self.backend, self.seq, self.dtype)

    @property
    def trustworthy(self) -> bool:
        """Measured, and not marked noisy: fit for findings, best-speedup and diff verdicts."""
        return self.status == "ok" and self.median_ms is not None and not self.noisy

    @property
    def launch_bound(self) -> bool:
        """The host's launch cost, not the kernel, sets the loop time (host >= 90% of it,
        or the kernels alone take under 80% of it).

        Without a kernel time (model mode), a host that takes as long as the GPU says
        nothing once a call runs for HOST_WAITS_MS or more: the host is then waiting
        (a full CUDA launch queue, or a sync inside the model), not launching; a 7B
        prefill's 1.15 s was marked launch-bound on the H200 before this."""
        if self.median_ms is None:
            return False
        host_near = self.host_ms is not None and self.host_ms >= 0.9 * self.median_ms
        if self.device_ms is None:
            return host_near and self.median_ms < HOST_WAITS_MS
        return host_near or self.device_ms < 0.8 * self.median_ms


def attach_speedups(cells: list[Cell]) -> None:
    """Fill ``speedup_vs_standard`` = standard median / this median, per (seq, dtype)."""
    standard = {
        (c.seq, c.dtype): c.median_ms
        for c in cells
        if c.backend == "standard" and c.status == "ok" and c.median_ms
    }
    for cell in cells:
        base = standard.get((cell.seq, cell.dtype))
        if cell.status == "ok" and cell.median_ms and base:
            cell.speedup_vs_standard = base / cell.median_ms
        else:
            cell.speedup_vs_standard = None


def memory_bound(cell: "Cell") -> bool:
    """Judged on bandwidth (a decode step), not TFLOP/s."""
    return cell.bound == "memory"


def attention_flops(batch: int, heads: int, seq: int, head_dim: int, causal: bool,
                    backward: bool, seq_k: int | None = None) -> float:
    """FLOPs of attention: 4*B*H*Sq*Sk*D (two matmuls), halved for causal, x3.5 fwd+bwd.

    The convention of FlashAttention's benchmarks, so TFLOP/s figures compare directly.
    """
    seq_k = seq if seq_k is None else seq_k
    flops = 4.0 * batch * heads * seq * seq_k * head_dim
    if causal:
        flops /= 2.0
    if backward:
        flops *= 3.5
    return flops


__all__ = [
    "Cell", "PARITY_RATIO_LIMIT", "Parity", "SCHEMA_NAME", "SCHEMA_VERSION", "STATUSES",
    "attach_speedups", "attention_flops", "memory_bound",
]
