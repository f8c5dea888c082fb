"""What this box has installed, seen without importing torch (milliseconds, not seconds).

* :func:`preview` -- installed packages and versions (importlib.metadata), the driver and
  the GPUs as NVML sees them, the wheel tags a flash-attn build must match. The doctor
  shows it before the worker has even imported torch.
* :func:`fingerprint` -- everything that decides the doctor's answer, as a plain dict: a
  cached answer is reused only while the fingerprint is unchanged.
* :func:`compile_cache_env` -- where the worker's compilers (inductor, Triton, CuTe DSL,
  FA4) keep what they compiled, inside flashtui's cache dir unless the user chose;
  :func:`bytecode_cache_env` -- the same for Python's own bytecode, where it is not cached.

UI side: no torch, no engine.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import sys
from pathlib import Path
from typing import Any

from flashtui import __version__, paths

# Distributions whose version decides what the probe finds: name shown -> dist names tried.
PACKAGES: dict[str, tuple[str, ...]] = {
    "torch": ("torch",),
    "triton": ("triton", "pytorch-triton"),
    "cudnn": ("nvidia-cudnn-cu13", "nvidia-cudnn-cu12", "nvidia-cudnn-cu11"),
    "cuda_runtime": ("nvidia-cuda-runtime", "nvidia-cuda-runtime-cu13", "nvidia-cuda-runtime-cu12"),
    "flash_attn": ("flash-attn", "flash_attn"),
    "flash_attn_3": ("flash-attn-3", "flash_attn_3"),
    "flash_attn_4": ("flash-attn-4", "flash_attn_4"),
    "cutlass_dsl": ("nvidia-cutlass-dsl",),
    "transformers": ("transformers",),
}
# The engine files whose code decides a probe's answer: an edit re-probes (development).
_PROBE_CODE = ("engine/capability.py", "engine/backends.py", "engine/kernel.py", "engine/parity.py")


def cache_root() -> Path:
    """The cache dir (paths.cache_dir: the override or the platform's; safe to delete)."""
    return paths.cache_dir()


def _dist_version(names: tuple[str, ...]) -> str | None:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def package_versions() -> dict[str, str | None]:
    """Each package of :data:`PACKAGES` -> its installed version, None when absent."""
    return {shown: _dist_version(names) for shown, names in PACKAGES.items()}


def wheel_tags(versions: dict[str, str | None]) -> dict[str, str | None]:
    """torch major.minor, its CUDA build (from the +cuXYZ local tag), the cp tag."""
    torch_version = versions.get("torch")
    public, _, local = (torch_version or "").partition("+")
    cuda = local[2:] if local.startswith("cu") and local[2:].isdigit() else None
    return {
        "torch": ".".join(public.split(".")[:2]) or None,
        "cuda": f"{cuda[:-1]}.{cuda[-1]}" if cuda and len(cuda) >= 2 else None,
        "cp": "cp" + "".join(platform.python_version_tuple()[:2]),
        "platform": f"{sys.platform}_{platform.machine()}",
    }


def _gpus() -> tuple[dict[str, Any], list[dict[str, str | None]]]:
    from flashtui.monitor.nvml import gpu_identities

    try:
        status, gpus = gpu_identities()
        return status.to_dict(), gpus
    except Exception as exc:  # noqa: BLE001 - a broken NVML is a state, not a crash
        return {"available": False, "reason": f"NVML probe failed: {exc}"}, []


def preview() -> dict[str, Any]:
    """Packages, NVML (driver, GPU names and UUIDs), wheel tags, Python: no torch."""
    versions = package_versions()
    nvml, gpus = _gpus()
    return {"packages": versions, "nvml": nvml, "gpus": gpus, "wheel_tags": wheel_tags(versions),
            "python": platform.python_version(), "flashtui": __version__}


def _probe_code_digest() -> str:
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for rel in _PROBE_CODE:
        try:
            digest.update((root / rel).read_bytes())
        except OSError:
            digest.update(b"-")
    return digest.hexdigest()[:16]


def fingerprint(env_preview: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """Everything that decides the doctor's answer here, from :func:`preview` and the options.

    ``options``: what the user asked (device, full, fastest). CUDA_VISIBLE_DEVICES is in
    because it decides which GPU the worker sees.
    """
    nvml = env_preview.get("nvml") or {}
    return {
        "flashtui": env_preview.get("flashtui"),
        "python": env_preview.get("python"),
        "python_prefix": sys.prefix,
        "packages": dict(env_preview.get("packages") or {}),
        "driver": nvml.get("driver_version"),
        "gpus": [dict(g) for g in env_preview.get("gpus") or []],
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "probe_code": _probe_code_digest(),
        "options": dict(options),
    }


# Compiler caches the worker's libraries read from the environment -> folder under the cache dir.
# FA4's persistent cache is opt-in (its ENABLED flag) and keyed on a digest of its own sources.
COMPILE_CACHE_DIRS = {
    "TORCHINDUCTOR_CACHE_DIR": "inductor",
    "TRITON_CACHE_DIR": "triton",
    "CUTE_DSL_CACHE_DIR": "cute-dsl",
    "FLASH_ATTENTION_CUTE_DSL_CACHE_DIR": "flash-attn-4",
}
FA4_CACHE_ENABLED = "FLASH_ATTENTION_CUTE_DSL_CACHE_ENABLED"


def compile_cache_env(env: dict[str, str]) -> dict[str, str]:
    """The variables to add to ``env`` (a worker's environment) so compiles persist.

    A variable the user set is kept; so is ``FLASH_ATTENTION_CUTE_DSL_CACHE_ENABLED=0``.
    """
    override = env.get(paths.CACHE_DIR_ENV)
    root = (Path(override).expanduser() if override else paths.cache_dir()) / "compile"
    added = {name: str(root / folder) for name, folder in COMPILE_CACHE_DIRS.items() if not env.get(name)}
    if FA4_CACHE_ENABLED not in env:
        added[FA4_CACHE_ENABLED] = "1"
    return added


# A module every worker imports that is costly to compile from source (torch._dynamo: flex,
# inductor): whether its bytecode is cached next to it says whether this Python caches.
_BYTECODE_SAMPLE = ("_dynamo", "convert_frame.py")


def _torch_bytecode_cached() -> bool | None:
    """Whether torch's installed sources have cached bytecode (None: torch not found).
    Found without importing torch (find_spec of a top-level package runs none of it)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    source = Path(spec.origin).parent.joinpath(*_BYTECODE_SAMPLE)
    if not source.exists():
        return None
    return (source.parent / "__pycache__" / f"{source.stem}.{sys.implementation.cache_tag}.pyc").exists()


def bytecode_cache_env(env: dict[str, str]) -> dict[str, str]:
    """``PYTHONPYCACHEPREFIX`` for a worker whose Python would recompile torch from source.

    A site-packages without bytecode that Python may not write (read-only, or
    ``PYTHONDONTWRITEBYTECODE=1`` as many container images set) recompiles every module at
    every import: on the H200 box 15 s of a 35 s warm bench (torch._dynamo, inductor, the
    CuTe DSL), inside "inputs" and the worker's start. The worker then keeps its bytecode
    under flashtui's cache dir (never next to the user's sources), so the caller also drops
    ``PYTHONDONTWRITEBYTECODE`` for the worker. Empty when torch's bytecode is there or the
    user chose a prefix.
    """
    if env.get("PYTHONPYCACHEPREFIX") or _torch_bytecode_cached() is not False:
        return {}
    override = env.get(paths.CACHE_DIR_ENV)
    root = (Path(override).expanduser() if override else paths.cache_dir()) / "compile" / "pycache"
    return {"PYTHONPYCACHEPREFIX": str(root)}


__all__ = ["PACKAGES", "cache_root", "bytecode_cache_env", "package_versions", "wheel_tags", "preview", "fingerprint",
           "compile_cache_env", "COMPILE_CACHE_DIRS"]
