"""Dense peak throughput and HBM bandwidth of known GPUs, for "% of peak" (no torch).

Figures are the vendors' published dense (no sparsity) tensor-core peaks for
fp16/bf16 with fp32 accumulation, and the non-tensor FP32 peak for fp32 (attention in
fp32 does not use TF32 unless the user enables it). Matched on a substring of the
device name as CUDA reports it; an unknown GPU gives None, shown as NA.
"""

from __future__ import annotations

# (name substring, {dtype: TFLOP/s}). More specific names first.
_PEAKS: list[tuple[str, dict[str, float]]] = [
    ("H100 PCIe", {"fp16": 756.0, "bf16": 756.0, "fp32": 51.0}),
    ("H100 NVL", {"fp16": 835.0, "bf16": 835.0, "fp32": 60.0}),
    ("H100", {"fp16": 989.4, "bf16": 989.4, "fp32": 66.9}),  # SXM5
    ("H200", {"fp16": 989.4, "bf16": 989.4, "fp32": 66.9}),
    ("H20", {"fp16": 148.0, "bf16": 148.0, "fp32": 44.0}),
    ("GH200", {"fp16": 989.4, "bf16": 989.4, "fp32": 66.9}),
    ("B200", {"fp16": 2250.0, "bf16": 2250.0, "fp32": 80.0}),
    ("A100", {"fp16": 312.0, "bf16": 312.0, "fp32": 19.5}),
    ("A10G", {"fp16": 70.0, "bf16": 70.0, "fp32": 31.2}),
    ("L40S", {"fp16": 362.0, "bf16": 362.0, "fp32": 91.6}),
    ("L4", {"fp16": 121.0, "bf16": 121.0, "fp32": 30.3}),
    ("RTX 4090", {"fp16": 165.2, "bf16": 165.2, "fp32": 82.6}),
    ("RTX 3090", {"fp16": 71.0, "bf16": 71.0, "fp32": 35.6}),
    ("V100", {"fp16": 125.0, "fp32": 15.7}),
    ("T4", {"fp16": 65.0, "fp32": 8.1}),
]


def peak_tflops(device_name: str | None, dtype: str) -> float | None:
    """Dense peak TFLOP/s for ``dtype`` on the named GPU, or None when unknown."""
    if not device_name:
        return None
    for needle, peaks in _PEAKS:
        if needle.lower() in device_name.lower():
            return peaks.get(dtype)
    return None


# (name substring, HBM peak GB/s, decimal as the spec sheets give it). More specific names
# first; a name that could be two memory configurations (a bare "A100") stays unknown.
_HBM_GBPS: list[tuple[str, float]] = [
    ("H100 PCIe", 2000.0),
    ("H100 NVL", 3900.0),
    ("H100", 3350.0),  # SXM5, HBM3
    ("GH200", 4000.0),  # 96 GB HBM3 (the 144 GB HBM3e part: 4900); before "H200", its substring
    ("H200", 4800.0),  # SXM and NVL, HBM3e
    ("H20", 4000.0),
    ("B200", 8000.0),
    ("A100-SXM4-80GB", 2039.0),
    ("A100 80GB PCIe", 1935.0),
    ("A100-SXM4-40GB", 1555.0),
    ("A100-PCIE-40GB", 1555.0),
    ("A10G", 600.0),
    ("L40S", 864.0),
    ("L4", 300.0),
    ("RTX 4090", 1008.0),
    ("RTX 3090", 936.0),
    ("V100", 900.0),
    ("T4", 320.0),
]


def peak_gbps(device_name: str | None) -> float | None:
    """HBM peak in GB/s (1e9 bytes/s) of the named GPU, or None when unknown."""
    if not device_name:
        return None
    for needle, gbps in _HBM_GBPS:
        if needle.lower() in device_name.lower():
            return gbps
    return None
