"""How long flashtui takes to build a random-weight model directly on the GPU.

Model mode builds its built-in models from config, on the device, in the target dtype
(``with torch.device("cuda"): from_config(..., dtype=bf16)``), never on the CPU first.
This script times that path for GPT-2 small and a Llama-3-8B-shaped model and prints a
markdown table. Targets: GPT-2 <= 0.2 s, Llama-3-8B <= 1 s (bf16, H100-class GPU).

    python benchmarks/model_build.py [--dtype bf16] [--models gpt2,llama-3-8b] [--repeats 3]

The first build in a process also pays one-time costs (CUDA kernels for init, lazy
imports); the table shows the first and the best of the repeats, and the test in
tests/gpu/test_models_gpu.py asserts the bound on the best.
"""

from __future__ import annotations

import argparse
import sys
import time

TARGETS_S = {"gpt2": 0.2, "llama-3-8b": 1.0}


def build_seconds(name: str, dtype: str, repeats: int) -> tuple[list[float], int]:
    """Build ``name`` ``repeats`` times through ModelRunner; returns (seconds each, params)."""
    import torch

    from flashtui.engine.backends import DeviceInfo
    from flashtui.engine.models import ModelRunner
    from flashtui.core.spec import SweepSpec

    props = torch.cuda.get_device_properties(0)
    device = DeviceInfo("cuda", props.name, (props.major, props.minor))
    spec = SweepSpec(mode="prefill", model=name, dtypes=(dtype,), seqs=(128,), device="cuda")
    runner = ModelRunner(spec, device)
    times: list[float] = []
    params = 0
    for _ in range(repeats):
        runner.release()
        built = runner._model(dtype)
        times.append(built.build_s)
        params = built.n_params
    runner.release()
    return times, params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="bf16", choices=("fp32", "fp16", "bf16"))
    parser.add_argument("--models", default="gpt2,llama-3-8b")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("model_build: needs a CUDA GPU (this benchmark times building on the device)", file=sys.stderr)
        return 2
    rows = []
    worst = 0
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        times, params = build_seconds(name, args.dtype, args.repeats)
        target = TARGETS_S.get(name)
        ok = "" if target is None else ("yes" if min(times) <= target else "NO")
        worst = worst or (ok == "NO")
        rows.append(f"| {name} | {params / 1e9:.2f}B | {args.dtype} | {times[0]:.3f} | {min(times):.3f} | "
                    f"{'' if target is None else f'{target:g}'} | {ok} |")
    print(f"Model build on {torch.cuda.get_device_name(0)} (torch {torch.__version__}), "
          f"{args.repeats} builds each\n")
    print("| model | params | dtype | first build (s) | best build (s) | target (s) | within |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    return 1 if worst else 0


if __name__ == "__main__":
    raise SystemExit(main())
