"""Provenance: what this worker runs on, so every number can say where it came from."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import sys
from typing import Any

import torch

from flashtui import __version__
from flashtui.engine.backends import DeviceInfo


def _dist(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _driver_version() -> str | None:
    """The NVIDIA driver version (NVML when present; else CUDA's driver API number)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
            return version.decode() if isinstance(version, bytes) else str(version)
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - NVML absent or refusing is a normal state
        pass
    try:
        number = torch._C._cuda_getDriverVersion()  # e.g. 13000 -> "CUDA driver API 13.0"
        return f"CUDA driver API {number // 1000}.{(number % 1000) // 10}"
    except Exception:  # noqa: BLE001
        return None


def detect_device() -> tuple[DeviceInfo, dict[str, Any]]:
    """Initialize CUDA if present (creating the context now, not in the first cell)."""
    if torch.cuda.is_available():
        index = torch.cuda.current_device()
        torch.empty(1, device="cuda")  # context creation is part of the ready time
        props = torch.cuda.get_device_properties(index)
        capability = (props.major, props.minor)
        info = DeviceInfo("cuda", props.name, capability)
        pci = None
        if hasattr(props, "pci_bus_id"):
            pci = f"{getattr(props, 'pci_domain_id', 0):08X}:{props.pci_bus_id:02X}:{getattr(props, 'pci_device_id', 0):02X}.0"
        details = {
            "device_kind": "cuda",
            "device_name": props.name,
            "device_index": index,
            "device_count": torch.cuda.device_count(),
            "compute_capability": f"{props.major}.{props.minor}",
            "total_memory_bytes": int(props.total_memory),
            "sm_count": props.multi_processor_count,
            "pci_bus_id": pci,
            "uuid": str(getattr(props, "uuid", "")) or None,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        }
        return info, details
    info = DeviceInfo("cpu", _cpu_name(), None)
    return info, {
        "device_kind": "cpu",
        "device_name": info.name,
        "cpu_threads": torch.get_num_threads(),
        "cuda_unavailable_reason": _why_no_cuda(),
    }


def _why_no_cuda() -> str:
    if torch.version.cuda is None:
        return f"this torch build ({torch.__version__}) has no CUDA support"
    if torch.cuda.device_count() == 0:
        return "torch has CUDA support but sees no GPU (driver missing or CUDA_VISIBLE_DEVICES empty)"
    return "CUDA is not available"


def collect(device: DeviceInfo, details: dict[str, Any]) -> dict[str, Any]:
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {
        **details,
        "driver": _driver_version() if device.kind == "cuda" else None,
        "cuda_runtime": torch.version.cuda,
        "torch": torch.__version__,
        "cudnn": str(cudnn) if cudnn else None,
        "flash_attn": _dist("flash-attn") or _dist("flash_attn"),
        "flash_attn_3": _dist("flash-attn-3") or _dist("flash_attn_3"),
        "flash_attn_4": _dist("flash-attn-4") or _dist("flash_attn_4"),
        "transformers": _dist("transformers"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "flashtui": __version__,
    }
