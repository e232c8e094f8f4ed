"""Which reduced precision a device computes fast in (shared by training and inference)."""
from __future__ import annotations

from pathlib import Path

import torch

__all__ = ["cpu_has_bf16", "resolve_amp"]


def cpu_has_bf16() -> bool:
    """The CPU has bf16 arithmetic (AMX or AVX512-bf16), from ``/proc/cpuinfo``."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_amp(amp: str, device: torch.device) -> str:
    """``"auto"`` -> bf16 on CPUs with bf16 arithmetic and on CUDA devices that support it
    (fp16 on older ones), ``"none"`` elsewhere; any other value is returned as it is."""
    if amp != "auto":
        return amp
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if device.type == "cpu" and cpu_has_bf16() else "none"
