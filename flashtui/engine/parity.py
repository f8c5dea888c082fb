"""Parity: every backend against an fp64 oracle on the same inputs.

The seed notebook cast the flash output to fp16 and compared it with fp32 standard
attention using a tight tolerance, so parity "failed" on rounding alone. The honest
question is how far a kernel is from the exact answer *compared with* the textbook
algorithm in the same dtype. Hence, per cell:

- the oracle: the same q, k, v (and output gradient) in float64, attention computed in
  row chunks so its S x S never has to fit at once;
- the dtype's own error: textbook attention in the cell's dtype, same inputs, same chunks;
- ratio = rel_l2(backend) / rel_l2(standard in dtype); FlashAttention's tests pass a
  kernel at ratio <= 2.
"""

from __future__ import annotations

import math

from typing import Any

import torch

from flashtui.core.results import PARITY_RATIO_LIMIT, Parity
from flashtui.core.variants import Layout
from flashtui.engine.backends import Shape, standard_attention
from flashtui.engine.variants import mask_rows, query_valid

# fp32 standard on CPU is accurate to ~1e-7 relative; a ratio against an error that small
# is noise. Below this floor the ratio uses the floor instead.
REL_ERR_FLOOR = 1e-12


def chunk_rows_for(shape: Shape, element_bytes: int, budget_bytes: int) -> int:
    """Query rows per chunk so one chunk's scores (x3 for softmax temporaries, +1 byte per
    score for a variant's mask) fit the budget."""
    per_row = shape.batch * shape.heads * shape.seq * element_bytes * 3 + shape.batch * shape.seq
    return max(1, min(shape.q_len, budget_bytes // max(per_row, 1)))


def _rows(q, k, v, causal: bool, start: int, end: int, layout: Layout | None):
    """Query rows start:end of q (its last rows sit at the end of the keys)."""
    offset = k.shape[2] - q.shape[2]
    mask = mask_rows(layout, start, end, q.device) if layout is not None and layout.needs_mask() else None
    softcap = layout.softcap if layout is not None else None
    return standard_attention(q[:, :, start:end], k, v, causal, row_offset=offset + start,
                              mask=mask, softcap=softcap)


def chunked_attention(q, k, v, causal: bool, chunk_rows: int, dout=None, layout: Layout | None = None):
    """Attention by row chunks; with ``dout`` also (dq, dk, dv) via autograd per chunk.

    ``layout``: the same variant (window, documents, padding, softcap, q_len) the cell runs,
    its mask built chunk by chunk (engine.variants.mask_rows), never whole.
    """
    rows = q.shape[2]
    if dout is None:
        with torch.no_grad():
            return torch.cat([
                _rows(q, k, v, causal, i, min(i + chunk_rows, rows), layout)
                for i in range(0, rows, chunk_rows)
            ], dim=2), None
    q = q.detach().requires_grad_(True)
    k = k.detach().requires_grad_(True)
    v = v.detach().requires_grad_(True)
    outs = []
    for i in range(0, rows, chunk_rows):
        out_rows = _rows(q, k, v, causal, i, min(i + chunk_rows, rows), layout)
        out_rows.backward(dout[:, :, i:i + chunk_rows])
        outs.append(out_rows.detach())
    return torch.cat(outs, dim=2), (q.grad, k.grad, v.grad)


def real_rows(t: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Zero the padding query rows of a (B, H, Q, D) tensor (their output means nothing)."""
    return t if valid is None else torch.where(valid, t, torch.zeros((), dtype=t.dtype, device=t.device))


def error_metrics(actual: torch.Tensor, reference: torch.Tensor,
                  distribution: bool = False) -> dict[str, Any]:
    """max/mean absolute and relative L2 error; with ``distribution``, also "abs_diff"
    (outputs get one; gradients keep the summary numbers only)."""
    diff = actual.detach().to(torch.float64) - reference
    ref_norm = torch.linalg.vector_norm(reference).item()
    abs_diff = diff.abs()
    metrics: dict[str, Any] = {
        "max_abs": abs_diff.max().item(),
        "mean_abs": abs_diff.mean().item(),
        "rel_l2": torch.linalg.vector_norm(diff).item() / ref_norm if ref_norm else math.inf,
    }
    if distribution:
        metrics["abs_diff"] = abs_diff_distribution(abs_diff)
    return metrics


# |out - oracle| histogram: half-decade bins on log10, 1e-12 .. 1e2 (28 bins).
HIST_LOG10_MIN, HIST_LOG10_MAX, HIST_BINS = -12.0, 2.0, 28
QUANTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999))
# Beyond this many values, quantiles come from an even stride of them (4M samples put
# ~4,000 above p99.9); keeps the sort's memory small beside a near-OOM cell.
QUANTILE_MAX_ELEMENTS = 1 << 22


def abs_diff_distribution(abs_diff: torch.Tensor) -> dict[str, Any]:
    """The distribution of absolute differences: log-binned counts and quantiles.

    ``counts[i]`` holds values in [10**edges[i], 10**edges[i+1]); ``below`` counts values
    under 10**edges[0] (exact zeros included), ``above`` those at or over 10**edges[-1].
    Max and mean say how bad the worst element is; this says whether that element is
    alone or the whole tensor is off (what "max_abs 3e-2" cannot).
    """
    values = abs_diff.detach().flatten().float()  # fp32 spans 1e-12..1e2 easily, at half the bytes
    n = values.numel()
    low, high = 10.0 ** HIST_LOG10_MIN, 10.0 ** HIST_LOG10_MAX
    in_range = values[(values >= low) & (values < high)]
    counts = torch.histc(torch.log10(in_range), bins=HIST_BINS,
                         min=HIST_LOG10_MIN, max=HIST_LOG10_MAX) if in_range.numel() else None
    del in_range
    step = (HIST_LOG10_MAX - HIST_LOG10_MIN) / HIST_BINS
    quantiles: dict[str, float | None] = {name: None for name, _ in QUANTILES}
    if n:
        sample = values if n <= QUANTILE_MAX_ELEMENTS else values[:: -(-n // QUANTILE_MAX_ELEMENTS)]
        ordered = torch.sort(sample).values
        last = ordered.numel() - 1
        quantiles = {name: ordered[min(last, int(q * last + 0.5))].item() for name, q in QUANTILES}
    return {
        "n": n,
        "edges_log10": [HIST_LOG10_MIN + i * step for i in range(HIST_BINS + 1)],
        "counts": [int(c) for c in counts.tolist()] if counts is not None else [0] * HIST_BINS,
        "below": int((values < low).sum().item()),
        "above": int((values >= high).sum().item()),
        "quantiles": quantiles,
    }


def _ratio(err: float, standard_err: float) -> float:
    return err / max(standard_err, REL_ERR_FLOOR)


class ParityOracle:
    """fp64 reference (and the dtype's own textbook error) for one group of inputs."""

    GRAD_NAMES = ("dq", "dk", "dv")

    def __init__(self, q, k, v, dout, shape: Shape, budget_bytes: int) -> None:
        self.shape = shape
        layout = shape.layout
        # Padding query rows are left out of every comparison (zeroed on both sides).
        self.valid = query_valid(layout, q.device) if layout is not None else None
        rows64 = chunk_rows_for(shape, 8, budget_bytes)
        q64, k64, v64 = (t.detach().to(torch.float64) for t in (q, k, v))
        dout64 = dout.detach().to(torch.float64) if dout is not None else None
        out64, grads64 = chunked_attention(q64, k64, v64, shape.causal, rows64, dout64, layout)
        self.out64 = real_rows(out64, self.valid)
        self.grads64 = self._real_grads(grads64)
        # The textbook algorithm in the cell's own dtype: the error the dtype itself costs.
        rows = chunk_rows_for(shape, q.element_size(), budget_bytes)
        std_out, std_grads = chunked_attention(q, k, v, shape.causal, rows, dout, layout)
        std_out, std_grads = real_rows(std_out, self.valid), self._real_grads(std_grads)
        self.standard_out = error_metrics(std_out, self.out64, distribution=True)
        self.standard_grads = (
            {name: error_metrics(g, ref) for name, g, ref in zip(self.GRAD_NAMES, std_grads, self.grads64)}
            if std_grads is not None else None
        )
        del std_out, std_grads

    def _real_grads(self, grads):
        """dq of padding query rows is zeroed like their output; dk, dv stay whole."""
        if grads is None or self.valid is None:
            return grads
        return (real_rows(grads[0], self.valid), *grads[1:])

    def evaluate(self, out_bhsd: torch.Tensor, grads_bhsd: tuple[torch.Tensor, ...] | None) -> Parity:
        out_bhsd = real_rows(out_bhsd, self.valid)
        grads_bhsd = self._real_grads(grads_bhsd)
        metrics = error_metrics(out_bhsd, self.out64, distribution=True)
        ratio = _ratio(metrics["rel_l2"], self.standard_out["rel_l2"])
        passed = ratio <= PARITY_RATIO_LIMIT
        grads: dict[str, dict[str, Any]] | None = None
        if grads_bhsd is not None and self.grads64 is not None and self.standard_grads is not None:
            grads = {}
            for name, grad, ref in zip(self.GRAD_NAMES, grads_bhsd, self.grads64):
                g = error_metrics(grad, ref)
                g["standard_rel_l2"] = self.standard_grads[name]["rel_l2"]
                g["ratio_vs_standard"] = _ratio(g["rel_l2"], g["standard_rel_l2"])
                g["passed"] = g["ratio_vs_standard"] <= PARITY_RATIO_LIMIT
                passed = passed and g["passed"]
                grads[name] = g
        return Parity(
            reference="fp64", max_abs=metrics["max_abs"], mean_abs=metrics["mean_abs"],
            rel_l2=metrics["rel_l2"], standard_rel_l2=self.standard_out["rel_l2"],
            ratio_vs_standard=ratio, passed=passed, grads=grads,
            abs_diff=metrics["abs_diff"], standard_abs_diff=self.standard_out["abs_diff"],
        )

    def release(self) -> None:
        self.out64 = None  # type: ignore[assignment]
        self.grads64 = None


def oracle_bytes(shape: Shape) -> int:
    """Resident bytes of the fp64 oracle (q, k, v, out, dout and grads)."""
    bhsd = shape.batch * shape.heads * shape.q_len * shape.head_dim * 8
    kv = shape.batch * shape.kv_heads * shape.seq * shape.head_dim * 8
    total = 2 * bhsd + 2 * kv
    if shape.backward:
        total += 2 * bhsd + 2 * kv
    return total


