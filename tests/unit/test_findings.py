"""Findings a user can act on, from trustworthy cells only (reports/findings.py)."""

from __future__ import annotations

from flashtui.core.results import Cell, Parity
from flashtui.core.session import Session
from flashtui.reports import render_session, table
from flashtui.reports.findings import findings


def _cell(backend, seq, median_ms, **kw):
    parity = kw.pop("parity", Parity(passed=True, ratio_vs_standard=1.0, rel_l2=1e-3))
    return Cell(backend, seq, "bf16", median_ms=median_ms, iqr_ms=median_ms * 0.01, parity=parity,
                peak_alloc_bytes=kw.pop("peak", 1 << 20), **kw)


def _session(cells, **spec):
    s = Session(spec={"mode": "kernel", "dtypes": ["bf16"], "batch": 1, "heads": 16, "head_dim": 128,
                      **spec}, provenance={"device_name": "test"})
    for c in cells:
        s.add_cell(c)
    return s


def test_recommendation_is_the_fastest_trustworthy_passing_cell_with_how_to_and_vs_pytorch():
    s = _session([
        _cell("standard", 4096, 10.0, peak=1 << 30),
        _cell("sdpa", 4096, 1.0, extra={"sdpa_kernel": "FLASH_ATTENTION"}),
        _cell("fa4", 4096, 0.4, noisy=True, noise_reason="IQR 40% of median"),  # faster, but noisy
        _cell("fa2", 4096, 0.3, parity=Parity(passed=False, ratio_vs_standard=9.0)),  # fails parity
        _cell("sdpa-cudnn", 4096, 0.5),
    ])
    text = findings(s)
    first = text[0]
    assert first.startswith("use sdpa-cudnn at seq 4096: 0.500 ms")
    assert "20.0x faster than standard" in first and "1024x less memory" in first
    assert "2.00x over PyTorch's own pick (sdpa ran FLASH_ATTENTION)" in first
    assert "sdpa_kernel(SDPBackend.CUDNN_ATTENTION)" in first
    # The noisy cell is never cited as a winner; it is listed as noisy.
    assert not any("fa4 fastest" in line or "use fa4" in line for line in text)
    assert any(line.startswith("1 cell(s) noisy") and "fa4 seq=4096" in line for line in text)


def test_noisy_cells_are_marked_in_the_table_and_explained():
    s = _session([_cell("standard", 256, 1.0), _cell("sdpa-math", 256, 0.1, noisy=True,
                                                      noise_reason="IQR 73% of median; host CPU busy 2.0 of 2 cores")])
    text = table.render_session(s)
    assert "0.100 ms~" in text
    assert "~ noisy (1 cells, left out of findings): sdpa-math 256 bf16: IQR 73% of median" in text
    assert "speedup = standard's median / this median" in text


def test_launch_bound_cells_show_both_times():
    s = _session([_cell("standard", 1024, 1.0), _cell("fa4", 1024, 0.090, host_ms=0.085, device_ms=0.046,
                                                       device_ms_method="cuda-graph")])
    assert any("fa4 at seq 1024 is launch-bound" in line and "90.0 us" in line and "46.0 us" in line
               for line in findings(s))
    assert "85.0 us*" in table.render_session(s)


def test_model_mode_says_random_weights_uses_the_models_shape_and_labels_decode_per_token():
    extra = {"weights": "random", "heads": 12, "kv_heads": 12, "head_dim": 64, "layers": 12,
             "tokens_per_s": 4000.0}
    s = _session([_cell("standard", 512, 1.0, extra=dict(extra)), _cell("sdpa", 512, 0.5, extra=dict(extra))],
                 mode="decode", model="gpt2", heads=4, head_dim=64)
    md = render_session(s, "md")
    assert "heads 12" in md and "heads 4" not in md and "random weights" in md
    text = table.render_session(s)
    assert "ms/token" in text and "tokens/s" in text and "4,000" in text and "(random weights)" in text


def test_best_speedup_in_the_sessions_list_ignores_noisy_cells(tmp_path):
    from flashtui.store.index import summarize

    s = _session([_cell("standard", 256, 1.0), _cell("sdpa-math", 256, 0.11, noisy=True, noise_reason="x"),
                  _cell("sdpa-flash", 256, 0.5), _cell("standard", 512, 2.0, noisy=True, noise_reason="x"),
                  _cell("fa4", 512, 0.01)])
    summary = summarize(s, tmp_path / "s.jsonl")
    assert summary.best_speedup == 2.0 and summary.best_speedup_at == "sdpa-flash seq=256 bf16"
