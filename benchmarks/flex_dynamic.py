"""flex compiled two ways, side by side: static shapes (one compile per length, what
flashtui times: flashtui.engine.flex_compile) vs one dynamic-length compile with IS_DIVISIBLE
kept through kernel_options (the form flashtui tried and dropped: its launches cost the host more).

    python benchmarks/flex_dynamic.py --out DIR [--seq 512,1024,...] [--backward] [--rounds 3]

One process, GPU, empty compile caches (a new temp dir): each length is compiled by both
forms (the first call's wall time, synchronized, is ``compile_s``), then both are timed with
flashtui's own timing (median_ms: the L2-warm loop; device_ms: CUDA-graph replay) in
alternating rounds (static, dynamic, static, ...), and the median over rounds is kept. The
two outputs are compared (max abs difference). Written: DIR/flex_dynamic.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


DIVISIBLE_BLOCK = 128  # inductor's flex block: IS_DIVISIBLE needs both lengths multiples of it


def dynamic_flex():
    """torch.compile(flex_attention, dynamic=True) without duck sizing (otherwise a block count
    equal to the head count becomes one symbol and the next length recompiles)."""
    import torch
    import torch.fx.experimental._config as fx_config
    from torch.nn.attention.flex_attention import flex_attention

    fx_config.use_duck_shape = False
    return torch.compile(flex_attention, dynamic=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-out"))
    parser.add_argument("--seq", default="512,1024,2048,4096,8192,16384")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--head-dim", type=int, default=128)
    parser.add_argument("--backward", action="store_true", help="time forward+backward")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=30)
    args = parser.parse_args()
    try:
        seqs = [int(s) for s in args.seq.split(",") if s.strip()]
    except ValueError:
        print(f"flex_dynamic: --seq must be a comma list of integers, got {args.seq!r}", file=sys.stderr)
        return 2
    cache = tempfile.mkdtemp(prefix="flex-dynamic-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(cache, "inductor")
    os.environ["TRITON_CACHE_DIR"] = os.path.join(cache, "triton")
    os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")  # as the worker runs it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import torch
    from torch.nn.attention.flex_attention import create_block_mask

    from flashtui.engine import flex_compile
    from flashtui.engine.timing import time_calls

    if not torch.cuda.is_available():
        print("flex_dynamic: needs a CUDA GPU (flex's Triton kernels)", file=sys.stderr)
        return 2
    forms = {"static": flex_compile.compiled(), "dynamic": dynamic_flex()}
    rows = []
    for seq in seqs:
        gen = torch.Generator(device="cuda").manual_seed(seq)
        q, k, v = (torch.randn(args.batch, args.heads, seq, args.head_dim, device="cuda", generator=gen,
                               dtype=torch.bfloat16).requires_grad_(args.backward) for _ in range(3))
        dout = torch.randn_like(q) if args.backward else None
        mask = create_block_mask(lambda b, h, qi, ki: qi >= ki, None, None, seq, seq, device="cuda")
        calls, outs, compile_s = {}, {}, {}
        for name, fn in forms.items():
            divisible = seq % DIVISIBLE_BLOCK == 0
            options = {"IS_DIVISIBLE": divisible} if name == "dynamic" else None

            def forward(fn=fn, options=options):
                return fn(q, k, v, block_mask=mask, kernel_options=options)

            def call(forward=forward):
                out = forward()
                return torch.autograd.grad(out, (q, k, v), dout) if dout is not None else out
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            outs[name] = forward().detach()
            call()
            torch.cuda.synchronize()
            compile_s[name] = time.perf_counter() - t0
            calls[name] = call
        samples: dict[str, dict[str, list[float]]] = {n: {"median_ms": [], "device_ms": []} for n in forms}
        for _ in range(args.rounds):
            for name in forms:
                timing = time_calls(calls[name], "cuda", args.reps, 100.0)
                samples[name]["median_ms"].append(timing.median_ms)
                samples[name]["device_ms"].append(timing.device_ms or float("nan"))
        row = {"seq": seq, "max_abs_diff": float((outs["static"].float() - outs["dynamic"].float()).abs().max())}
        for name in forms:
            row[f"{name}_compile_s"] = round(compile_s[name], 3)
            for what in ("median_ms", "device_ms"):
                row[f"{name}_{what}"] = round(statistics.median(samples[name][what]), 5)
        row["dynamic_over_static_device"] = round(row["dynamic_device_ms"] / row["static_device_ms"], 4)
        rows.append(row)
        print(json.dumps(row), flush=True)
    meta = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "batch": args.batch,
            "heads": args.heads, "head_dim": args.head_dim, "dtype": "bf16", "causal": True,
            "backward": args.backward, "rounds": args.rounds, "reps": args.reps}
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "flex_dynamic_bwd" if args.backward else "flex_dynamic"
    (args.out / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = [f"flex static vs dynamic-length ({meta['device']}, torch {meta['torch']}, B={args.batch} "
             f"H={args.heads} D={args.head_dim} bf16 causal, {'fwd+bwd' if args.backward else 'forward'}; "
             f"median of {args.rounds} alternating rounds)", "",
             "| seq | compile static s | compile dynamic s | static median ms | dynamic median ms | "
             "static device ms | dynamic device ms | dynamic/static (device) | max abs diff |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['seq']} | {r['static_compile_s']} | {r['dynamic_compile_s']} | {r['static_median_ms']} | "
                     f"{r['dynamic_median_ms']} | {r['static_device_ms']} | {r['dynamic_device_ms']} | "
                     f"{r['dynamic_over_static_device']} | {r['max_abs_diff']:.3g} |")
    (args.out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
