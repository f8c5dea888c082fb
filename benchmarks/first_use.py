"""Where a backend's first use in a fresh process goes: imports, set-up, compile, first call.

    python benchmarks/first_use.py --out DIR [--cache DIR] [--runs 2]

Each backend (flex, fa4, sdpa-cudnn) runs in a fresh Python process of its own, step by
step, each step timed with the device synchronized; the same compile cache dir
(flashtui's layout, client.environment.compile_cache_env) is used by every run, so run 1
is cold and run 2 warm. Written: DIR/first_use.json and DIR/first_use.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# One child per backend: prints one JSON line {step: seconds}.
CHILD = r'''
import json, sys, time
steps = {}
mark = time.perf_counter()
def step(name):
    global mark
    if "torch" in sys.modules:
        import torch
        if torch.cuda.is_initialized():
            torch.cuda.synchronize()
    now = time.perf_counter(); steps[name] = round(now - mark, 3); mark = now
import atexit
atexit.register(lambda: print(json.dumps(steps), flush=True))  # a failed step keeps the ones before it
import torch; step("import torch")
torch.zeros(1, device="cuda"); step("cuda init")
q, k, v = (torch.randn(1, 16, 1024, 128, device="cuda", dtype=torch.bfloat16) for _ in range(3)); step("inputs")
which = sys.argv[1]
if which == "flex":
    import torch._dynamo; step("import torch._dynamo")
    import triton; step("import triton")
    import torch._inductor.compile_fx; step("import torch._inductor")
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention; step("import flex_attention")
    fn = torch.compile(flex_attention, dynamic=False); step("torch.compile wrap")
    mask = create_block_mask(lambda b, h, qi, ki: qi >= ki, None, None, 1024, 1024, device="cuda"); step("create_block_mask")
    fn(q, k, v, block_mask=mask); step("first call (compile)")
    fn(q, k, v, block_mask=mask); step("second call")
elif which == "fa4":
    from flash_attn.cute import flash_attn_func; step("import flash_attn.cute")
    t = lambda x: x.transpose(1, 2).contiguous()
    flash_attn_func(t(q), t(k), t(v), causal=True); step("first call (compile)")
    flash_attn_func(t(q), t(k), t(v), causal=True); step("second call")
elif which == "sdpa-cudnn":
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel
    with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
        F.scaled_dot_product_attention(q, k, v, is_causal=True); step("first forward")
        F.scaled_dot_product_attention(q, k, v, is_causal=True); step("second forward")
        qg, kg, vg = (x.clone().requires_grad_() for x in (q, k, v))
        F.scaled_dot_product_attention(qg, kg, vg, is_causal=True).sum().backward(); step("first backward")
        for d in (64, 256):
            a, b, c = (torch.randn(1, 2, 128, d, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
            F.scaled_dot_product_attention(a, b, c, is_causal=True).sum().backward(); step(f"head_dim {d} fwd+bwd")
'''


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-out"))
    parser.add_argument("--cache", type=Path, default=None, help="compile cache root (default: a new empty one)")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--backends", default="flex,flex@1,fa4,sdpa-cudnn",
                        help="comma list; NAME@N runs NAME with TORCHINDUCTOR_COMPILE_THREADS=N")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from flashtui.client.environment import compile_cache_env

    cache = args.cache or Path(tempfile.mkdtemp(prefix="flashtui-first-use-"))
    env = {**os.environ, "FLASHTUI_CACHE_DIR": str(cache)}
    env.update(compile_cache_env(env))
    results: dict[str, list[dict]] = {}
    for entry in args.backends.split(","):
        # "flex@1": flex with inductor compiling in-process (TORCHINDUCTOR_COMPILE_THREADS=1),
        # in a cache dir of its own so its run 1 is cold too.
        name, _, threads = entry.partition("@")
        run_env = dict(env)
        if threads:
            run_env = {**os.environ, "FLASHTUI_CACHE_DIR": str(cache / f"threads-{threads}")}
            run_env.update(compile_cache_env(run_env))
            run_env["TORCHINDUCTOR_COMPILE_THREADS"] = threads
        for run in range(args.runs):
            proc = subprocess.run([sys.executable, "-c", CHILD, name], capture_output=True, text=True, env=run_env,
                                  timeout=300)
            line = (proc.stdout.strip().splitlines() or ["{}"])[-1]
            try:
                steps = json.loads(line)
            except ValueError:
                steps = {}
            if proc.returncode != 0:
                steps["error"] = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
            results.setdefault(entry, []).append(steps)
            print(entry, "run", run + 1, steps, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "first_use.json").write_text(json.dumps(results, indent=1) + "\n")
    lines = ["| backend | run | steps (s) |", "| --- | --- | --- |"]
    for name, runs in results.items():
        for i, steps in enumerate(runs):
            lines.append(f"| {name} | {'cold' if i == 0 else 'warm'} | "
                         + ", ".join(f"{k} {v}" for k, v in steps.items()) + " |")
    (args.out / "first_use.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
