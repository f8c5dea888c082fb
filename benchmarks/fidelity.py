"""Fidelity: flashtui's median vs a plain CUDA-event loop over the same call, same process.

For each backend and sequence length, flashtui's own cell measurement (KernelRunner,
the path `flashtui bench` takes) is compared with the simplest honest measurement:
events around N back-to-back calls after a warm-up, divided by N. A ratio near 1 says
flashtui's harness adds nothing and hides nothing. Target: [0.97, 1.03] at S >= 1024.

The two are interleaved over several rounds and compared by their medians: an H100
near its power limit drifts by several percent between consecutive measurements of
the same kernel, and a single back-to-back pair would measure that drift, not flashtui.

    python benchmarks/fidelity.py --seq 1024,4096,16384 --dtype bf16 [--out table.md]
"""

from __future__ import annotations

import argparse
import sys

import torch

from flashtui.engine.backends import REGISTRY, Shape
from flashtui.engine.kernel import KernelRunner
from flashtui.engine.provenance import collect, detect_device
from flashtui.core.spec import CellKey, SweepSpec, parse_backends, parse_seqs


def plain_event_loop_ms(fn, warmup_ms: float = 100.0, min_total_ms: float = 50.0) -> float:
    """Events around N back-to-back calls (N so the loop lasts >= min_total_ms), / N.

    Warmed up the way any careful loop is: back-to-back calls for ``warmup_ms`` of wall
    time, so the GPU's clocks are where a steady workload puts them (an H100 fresh from
    idle runs a 30 µs kernel at up to half speed for the first milliseconds).
    """
    import time

    import gc

    gc.collect()  # the same footing as flashtui's harness (which pauses gc while timing)
    start = time.perf_counter()
    while (time.perf_counter() - start) * 1e3 < warmup_ms:
        for _ in range(10):
            fn()
        torch.cuda.synchronize()
    probe_start, probe_end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    probe_start.record()
    fn()
    probe_end.record()
    torch.cuda.synchronize()
    calls = max(20, int(min_total_ms / max(probe_start.elapsed_time(probe_end), 1e-3)))
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(calls):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / calls


def peers_ms(fn) -> dict[str, float | None]:
    """Triton's own timers on the same call: do_bench (L2 flushed per call) and
    do_bench_cudagraph (graph replay), medians; None where triton is missing."""
    try:
        from triton.testing import do_bench, do_bench_cudagraph
    except ImportError:
        return {"do_bench": None, "do_bench_cudagraph": None}
    out: dict[str, float | None] = {"do_bench": do_bench(fn, return_mode="median")}
    try:
        out["do_bench_cudagraph"] = do_bench_cudagraph(fn, return_mode="median")
    except Exception:  # noqa: BLE001 - a call that cannot be captured
        out["do_bench_cudagraph"] = None
    return out


def parse_shapes(text: str, seqs: str, batch: int) -> list[tuple[int, int]]:
    """'4x1024,2x4096,1x16384' -> [(4, 1024), ...]; without --shapes, --batch at every --seq."""
    if text:
        return [(int(b), int(s)) for b, s in (item.lower().split("x") for item in text.split(","))]
    return [(batch, s) for s in parse_seqs(seqs)]


def within(a: float | None, b: float | None, tol: float = 0.03) -> bool | None:
    return None if a is None or b is None else abs(a / b - 1.0) <= tol


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seq", default="1024,4096,16384")
    ap.add_argument("--shapes", default="", help="BxS list, e.g. 4x1024,2x4096,1x16384 (overrides --seq/--batch)")
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--backends", default=None)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cold-l2", action="store_true",
                    help="flashtui's cells flush L2 before every call, as do_bench does")
    ap.add_argument("--out")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("fidelity: needs a CUDA GPU", file=sys.stderr)
        return 2
    import statistics

    device, details = detect_device()
    prov = collect(device, details)
    rows = []
    failures = 0
    for batch, seq in parse_shapes(args.shapes, args.seq, args.batch):
        spec = SweepSpec(seqs=(seq,), dtypes=(args.dtype,), batch=batch, heads=args.heads,
                         head_dim=args.head_dim, parity=False, backends=parse_backends(args.backends),
                         device="cuda", cold_l2=args.cold_l2)
        runner = KernelRunner(spec, device)
        for key in spec.cells([n for n, b in REGISTRY.items() if b.availability(device)[0]]):
            cells, plain, bench, graph = [], [], [], []
            status = None
            for _ in range(args.rounds):  # interleaved: drift hits every timer alike
                cell = runner.run_cell(key)
                if cell.status != "ok":
                    status = cell
                    break
                cells.append(cell)
                q, k, v, _ = runner._group_inputs(key)
                shape = Shape(spec.batch, spec.heads, spec.effective_kv_heads, key.seq, spec.head_dim,
                              key.dtype, True, False)
                prepared = REGISTRY[key.backend].prepare(q, k, v, shape)
                with prepared.context():
                    plain.append(plain_event_loop_ms(prepared.forward))
                    peers = peers_ms(prepared.forward)
                bench.append(peers["do_bench"])
                graph.append(peers["do_bench_cudagraph"])
            label = f"{batch}x{seq}"
            if status is not None:
                rows.append(f"| {key.backend} | {label} | {status.status} | | | | | | | {status.reason or ''} |")
                continue

            def med(values):
                values = [v for v in values if v is not None]
                return statistics.median(values) if values else None

            ours_ms = med([c.median_ms for c in cells])
            device_ms = med([c.device_ms for c in cells])
            methods = sorted({c.device_ms_method or "none" for c in cells})
            launch_bound = any(c.launch_bound for c in cells)
            bench_ms, graph_ms = med(bench), med(graph)
            loop_ok = True if launch_bound else within(ours_ms, bench_ms)
            dev_ok = within(device_ms, graph_ms)
            verdict = "ok" if loop_ok is not False and dev_ok is not False else "OUT"
            failures += verdict != "ok"

            def f(v):
                return "NA" if v is None else f"{v:.4f}"
            rows.append(f"| {key.backend} | {label} | {f(ours_ms)} | {f(bench_ms)} | {f(plain_ms := med(plain))} "
                        f"| {f(device_ms)} ({'/'.join(methods)}) | {f(graph_ms)} | "
                        f"{'yes' if launch_bound else 'no'} | {verdict} | "
                        f"loop/do_bench {f(ours_ms / bench_ms if ours_ms and bench_ms else None)}, "
                        f"device/graph {f(device_ms / graph_ms if device_ms and graph_ms else None)} |")
        runner.release()
    table = "\n".join([
        f"Fidelity on {prov['device_name']} (torch {prov['torch']}, CUDA {prov['cuda_runtime']}), "
        f"H={args.heads} D={args.head_dim} {args.dtype} causal fwd; medians over {args.rounds} interleaved rounds; "
        f"flashtui L2 {'flushed per call (--cold-l2)' if args.cold_l2 else 'warm'}",
        "",
        "Targets: device_ms within ±3% of do_bench_cudagraph for every cell; median_ms within ±3% of "
        "do_bench where the cell is not launch-bound.",
        "",
        "| backend | BxS | flashtui median_ms | do_bench | plain loop | flashtui device_ms (method) "
        "| do_bench_cudagraph | launch-bound | verdict | ratios |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
    ])
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table + "\n")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
