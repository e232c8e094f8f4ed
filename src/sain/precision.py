"""Which reduced precision a device computes fast in (shared by training and inference).

Training: ``run.amp`` (:func:`resolve_amp`). Inference: ``precision`` / ``--precision``
``auto|fp32|bf16|fp16`` (:func:`resolve_precision`, :func:`inference_autocast`).
"""

from __future__ import annotations

from pathlib import Path

import torch

__all__ = [
    "PRECISIONS",
    "check_precision",
    "downscale_precision",
    "cpu_has_bf16",
    "inference_autocast",
    "resolve_amp",
    "resolve_precision",
]


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


#: The values of ``--precision`` / ``precision=``.
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r} (known: {', '.join(PRECISIONS)})")
    return precision


def resolve_precision(precision: str, device: torch.device | str = "cpu") -> str:
    """``"auto"`` -> ``"bf16"`` on CPUs with bf16 arithmetic (AMX, AVX512-bf16) and on CUDA
    devices that support it (``"fp16"`` on older ones), ``"fp32"`` elsewhere."""
    check_precision(precision)
    if precision != "auto":
        return precision
    dev = torch.device(device)
    if dev.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if dev.type == "mps":
        return "fp16"
    return "bf16" if dev.type == "cpu" and cpu_has_bf16() else "fp32"


def inference_autocast(precision: str, device: torch.device | str = "cpu"):
    """The autocast context for the *restoring* pass at ``precision``.

    Under it the dense blocks compute in the reduced dtype while the invertible trunk, the
    Haar transform and the latent sampler stay in float32 (the dense block casts its input
    and returns its output in the compute dtype; the couplings' additions promote back).
    The downscale never runs under it: bf16 changes about a third of the 8-bit thumbnail
    values by one level (measured on the bundled sain-x2-jpeg), while the restored image
    stays within 0.02 dB (benchmarks/bench_inference.py checks both).
    """
    import contextlib

    p = resolve_precision(precision, device)
    if p == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=_DTYPES[p])


def downscale_precision(precision: str) -> str:
    """The precision of the *thumbnail* pass: ``auto`` keeps it in fp32 (bf16 would change
    about a third of its 8-bit values by one level); an explicit ``bf16``/``fp16`` is obeyed."""
    return "fp32" if check_precision(precision) == "auto" else precision
