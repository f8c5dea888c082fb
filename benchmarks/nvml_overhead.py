"""Does the NVML sampler perturb what flashtui measures?

Times one fixed attention kernel (torch SDPA, bf16, causal; by default B=1, H=16,
S=4096, D=128) with CUDA events, with and without :class:`NvmlSampler` running at
20 Hz in a thread of the *same* process. That is harsher than flashtui's real setup
(the sampler lives in the client, the kernel in the worker), so a pass here bounds the
real overhead from above. Off and on rounds are interleaved so clock drift and thermal
state hit both alike; each condition's median is over all its reps.

Prints a markdown table and writes it to ``--out`` (default: stdout only). Exit codes:
0 ratio within [0.99, 1.01]; 1 outside it; 2 cannot run here (no CUDA or no NVML).

    python benchmarks/nvml_overhead.py --out nvml_overhead.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

# Runnable from a checkout without installing flashtui.

from flashtui.monitor.nvml import NvmlSampler, probe_nvml  # noqa: E402

RATIO_LOW, RATIO_HIGH = 0.99, 1.01


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--seq", type=int, default=4096)
    parser.add_argument("--head-dim", type=int, default=128)
    parser.add_argument("--rate-hz", type=float, default=20.0, help="sampler rate while 'on'")
    parser.add_argument("--reps", type=int, default=300, help="timed calls per round")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per condition, interleaved")
    parser.add_argument("--warmup-s", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=None, help="also write the markdown here")
    return parser.parse_args(argv)


def time_reps(torch, fn, reps: int) -> list[float]:
    """Device time of each call (ms), events around each, one sync at the end."""
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    for start, end in zip(starts, ends):
        start.record()
        fn()
        end.record()
    torch.cuda.synchronize()
    return [s.elapsed_time(e) for s, e in zip(starts, ends)]


def iqr(values: list[float]) -> float:
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q3 - q1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    status = probe_nvml()
    if not status.available:
        print(f"cannot run: {status.reason}", file=sys.stderr)
        return 2
    import torch
    import torch.nn.functional as F

    if not torch.cuda.is_available():
        print("cannot run: torch sees no CUDA device", file=sys.stderr)
        return 2

    shape = (args.batch, args.heads, args.seq, args.head_dim)
    q, k, v = (torch.randn(shape, device="cuda", dtype=torch.bfloat16) for _ in range(3))

    def kernel() -> None:
        F.scaled_dot_product_attention(q, k, v, is_causal=True)

    deadline = time.monotonic() + args.warmup_s
    while time.monotonic() < deadline:
        kernel()
        torch.cuda.synchronize()

    props = torch.cuda.get_device_properties(0)
    pci = None
    if hasattr(props, "pci_bus_id"):
        pci = "%08X:%02X:%02X.0" % (getattr(props, "pci_domain_id", 0), props.pci_bus_id,
                                    getattr(props, "pci_device_id", 0))
    uuid = str(getattr(props, "uuid", "")) or None

    off_ms: list[float] = []
    on_ms: list[float] = []
    n_samples = 0
    cost_ms: list[float] = []
    device_how = None
    for round_index in range(args.rounds):
        # Alternate which condition goes first, so neither always follows the other.
        order = ("off", "on") if round_index % 2 == 0 else ("on", "off")
        for condition in order:
            if condition == "off":
                off_ms += time_reps(torch, kernel, args.reps)
                continue
            sampler = NvmlSampler(rate_hz=args.rate_hz, pci_bus_id=pci, uuid=uuid)
            sampler.start()
            if not sampler.status.available:
                print(f"cannot run: {sampler.status.reason}", file=sys.stderr)
                return 2
            time.sleep(0.2)  # a few samples in flight before timing starts
            try:
                on_ms += time_reps(torch, kernel, args.reps)
            finally:
                sampler.stop()
            stats = sampler.stats()
            n_samples += stats["n_samples"]
            if stats["mean_cost_ms"] is not None:
                cost_ms.append(stats["mean_cost_ms"])
            device_how = stats["device_how"]

    off_median, on_median = statistics.median(off_ms), statistics.median(on_ms)
    ratio = on_median / off_median
    passed = RATIO_LOW <= ratio <= RATIO_HIGH
    lines = [
        f"# NVML sampler overhead on {props.name}",
        "",
        f"SDPA bf16 causal, B={args.batch} H={args.heads} S={args.seq} D={args.head_dim}; "
        f"sampler at {args.rate_hz:g} Hz in the same process (device matched by {device_how}); "
        f"{args.rounds} interleaved rounds x {args.reps} reps per condition.",
        "",
        "| sampler | median ms | IQR ms | min ms | reps |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| off | {off_median:.4f} | {iqr(off_ms):.4f} | {min(off_ms):.4f} | {len(off_ms)} |",
        f"| on ({args.rate_hz:g} Hz) | {on_median:.4f} | {iqr(on_ms):.4f} | {min(on_ms):.4f} | {len(on_ms)} |",
        "",
        f"ratio on/off: **{ratio:.4f}** (pass band [{RATIO_LOW}, {RATIO_HIGH}]: "
        f"{'PASS' if passed else 'FAIL'})",
        "",
        f"sampler: {n_samples} samples, mean cost per sample "
        f"{(statistics.mean(cost_ms) if cost_ms else float('nan')):.3f} ms",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        args.out.write_text(text)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
