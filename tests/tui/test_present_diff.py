"""The |diff| distribution view's text, from plain dicts (no terminal, no torch)."""

from __future__ import annotations

from flashtui.tui.present_diff import distribution_text, histogram_rows, verdict

EDGES = [-12.0 + 0.5 * i for i in range(29)]


def dist(bins: dict[float, int], below: int = 0, above: int = 0, p99: float | None = 1e-3) -> dict:
    counts = [bins.get(edge, 0) for edge in EDGES[:-1]]
    return {"n": sum(counts) + below + above, "edges_log10": EDGES, "counts": counts,
            "below": below, "above": above,
            "quantiles": {"p50": p99 and p99 / 10, "p90": p99 and p99 / 2, "p99": p99, "p99.9": p99}}


def test_rows_span_the_bins_either_side_uses_with_below_and_above():
    rows = histogram_rows(dist({-4.0: 10, -3.0: 5}, below=2), dist({-3.5: 7}, above=1))
    labels = [r[0] for r in rows]
    assert labels == ["< 1e-12 (or 0)", "1e-4 … 3e-4", "3e-4 … 1e-3", "1e-3 … 3e-3", "≥ 1e2"]
    assert rows[1][1:] == (10, 0) and rows[2][1:] == (0, 7) and rows[0][1:] == (2, 0)


def test_verdict_compares_the_tails_with_standard():
    same = verdict(dist({-3.0: 1}, p99=1.2e-3), dist({-3.0: 1}, p99=1e-3), "bf16")
    assert same.startswith("p99 within 2x of standard's in bf16")
    worse = verdict(dist({-2.0: 1}, p99=3e-2), dist({-3.0: 1}, p99=1e-3), "bf16")
    assert worse == "p99 is 30.0x standard's in bf16: errors beyond what bf16 itself costs"
    better = verdict(dist({-5.0: 1}, p99=1e-5), dist({-3.0: 1}, p99=1e-3), "fp16")
    assert better.startswith("p99 is 100x smaller than standard's in fp16")
    assert verdict(dist({}, p99=0.0), dist({-3.0: 1}), "fp32") == "p99 is zero or NA: nothing to compare"


def test_cell_without_a_distribution_says_why():
    title, lines = distribution_text({"backend": "fa4", "seq": 512, "dtype": "bf16", "status": "oom",
                                      "reason": "CUDA out of memory", "parity": None})
    assert title == "|out − reference| of fa4 seq=512 bf16"
    assert lines == ["no difference distribution for this cell: CUDA out of memory"]
    _, lines = distribution_text({"backend": "fa4", "seq": 512, "dtype": "bf16", "status": "ok",
                                  "parity": {"reason": "fp64 oracle needs 9.0 GiB + workspace, 2.0 GiB free"}})
    assert lines == ["no difference distribution for this cell: fp64 oracle needs 9.0 GiB + workspace, 2.0 GiB free"]


def test_full_text_has_counts_bars_and_quantiles():
    cell = {"backend": "sdpa-flash", "seq": 256, "dtype": "bf16", "status": "ok",
            "parity": {"reference": "fp64", "max_abs": 7.6e-3, "mean_abs": 2.8e-4,
                       "abs_diff": dist({-4.0: 30, -3.5: 10}), "standard_abs_diff": dist({-3.5: 40})}}
    _, lines = distribution_text(cell)
    assert lines[0] == "40 output elements vs the fp64 reference; max 7.6e-03, mean 2.8e-04"
    row = next(line for line in lines if line.startswith("1e-4 … 3e-4"))
    assert "75%" in row and "0.0%" in row and "█" in row
    assert any(line.startswith("p50 1.0e-04 (standard 1.0e-04)") for line in lines)
