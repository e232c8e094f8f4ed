"""Which reduced precision a device computes fast in (shared by training and inference).

Training: ``run.amp`` (:func:`resolve_amp`). Inference: ``precision`` / ``--precision``
``auto|fp32|bf16|fp16`` (:func:`resolve_precision`, :func:`inference_autocast`).
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

__all__ = [
    "PRECISIONS",
    "check_precision",
    "downscale_precision",
    "cpu_description",
    "cpu_has_bf16",
    "cpu_prefers_bf16",
    "inference_autocast",
    "resolve_amp",
    "resolve_precision",
]


@functools.cache
def _cpuinfo() -> str:
    """``/proc/cpuinfo``, read once (``auto`` is resolved for every tile)."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_has_bf16() -> bool:
    """The CPU has bf16 arithmetic (AMX or AVX512-bf16), from ``/proc/cpuinfo``."""
    return bool(cpu_description()["bf16"])


def cpu_prefers_bf16() -> bool:
    """bf16 is faster than fp32 on this CPU: it has AMX (``amx_bf16``), or it is an AMD CPU
    with AVX512-bf16.

    AVX512-bf16 alone does not say it. On an AMD EPYC with AVX512-bf16 (no AMX) the bf16
    restoring pass ran 3.0x the straightforward fp32 form (``benchmarks/results/
    inference_vm_20261202-0546``). On an Intel Xeon with AVX512-bf16 and AVX512-fp16 but no
    AMX (2026-12-04) one 3x3 convolution of the network's shape ran at 178 GFLOP/s in bf16
    against 354 in fp32 (oneDNN's ``brg_conv_fwd:avx512_core_bf16`` against ``:avx512_core``),
    and the 12 MP upscale at 131 against 210 GFLOP/s: there ``auto`` keeps fp32.
    """
    return bool(cpu_description()["prefers_bf16"])


#: (vendor, family, first model, last model, name): the server and desktop cores this
#: project has met or is likely to, from the vendors' family / model numbers. "AMD EPYC" alone
#: (what a cloud VM's ``model name`` often says) does not tell Zen 3 from Zen 5, whose
#: AVX-512 units differ (Zen 4 runs 512-bit instructions in two halves, Zen 5 at full width),
#: so a speed measured on one says little of the other.
_MICROARCHES: tuple[tuple[str, int, int, int, str], ...] = (
    ("AuthenticAMD", 23, 0x00, 0x2F, "Zen / Zen+"),
    ("AuthenticAMD", 23, 0x30, 0xFF, "Zen 2"),
    ("AuthenticAMD", 25, 0x00, 0x0F, "Zen 3"),
    ("AuthenticAMD", 25, 0x10, 0x1F, "Zen 4"),
    ("AuthenticAMD", 25, 0x20, 0x5F, "Zen 3"),
    ("AuthenticAMD", 25, 0x60, 0xAF, "Zen 4"),
    ("AuthenticAMD", 26, 0x00, 0xFF, "Zen 5"),
    ("GenuineIntel", 6, 0x55, 0x55, "Skylake-SP / Cascade Lake / Cooper Lake"),
    ("GenuineIntel", 6, 0x6A, 0x6C, "Ice Lake-SP"),
    ("GenuineIntel", 6, 0x8F, 0x8F, "Sapphire Rapids"),
    ("GenuineIntel", 6, 0xAD, 0xAE, "Granite Rapids"),
    ("GenuineIntel", 6, 0xCF, 0xCF, "Emerald Rapids"),
)

#: The instruction-set flags that decide this project's speed, in the order reported.
SPEED_FLAGS: tuple[str, ...] = (
    "avx2",
    "avx512f",
    "avx512_bf16",
    "avx512_fp16",
    "amx_bf16",
    "amx_tile",
    "amx_int8",
)


def cpu_description(cpuinfo: str | None = None) -> dict[str, object]:
    """What this CPU is, as far as speed goes: ``model_name``, ``vendor``, ``family``,
    ``model``, ``stepping``, ``microarch`` (e.g. ``"Zen 4"``; None when unknown), the
    speed-relevant ``flags`` (:data:`SPEED_FLAGS` present), ``bf16`` (:func:`cpu_has_bf16`),
    ``prefers_bf16`` (:func:`cpu_prefers_bf16`) and ``summary``, one line of all of it.
    ``cpuinfo`` is the text of ``/proc/cpuinfo`` (read when None; empty where there is none)."""
    text = _cpuinfo() if cpuinfo is None else cpuinfo
    first: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if first:
                break  # the first processor's block is enough
            continue
        key, sep, value = line.partition(":")
        if sep:
            first.setdefault(key.strip(), value.strip())

    def number(key: str) -> int | None:
        try:
            return int(first[key])
        except (KeyError, ValueError):
            return None

    vendor = first.get("vendor_id")
    family, model, stepping = number("cpu family"), number("model"), number("stepping")
    microarch = None
    if family is not None and model is not None:
        for v, f, lo, hi, name in _MICROARCHES:
            if v == vendor and f == family and lo <= model <= hi:
                microarch = name
                break
    flags = set(first.get("flags", "").split())
    present = [f for f in SPEED_FLAGS if f in flags]
    bf16 = "amx_bf16" in flags or "avx512_bf16" in flags
    prefers = "amx_bf16" in flags or ("avx512_bf16" in flags and vendor == "AuthenticAMD")
    name = first.get("model name") or "unknown CPU"
    ident = ", ".join(
        x
        for x in (
            microarch,
            None if family is None else f"family {family} model {model} stepping {stepping}",
        )
        if x
    )
    summary = (
        f"{name}{f' ({ident})' if ident else ''}; flags: {', '.join(present) or 'none of ' + '/'.join(SPEED_FLAGS[:3])}"
        f"; bf16 arithmetic: {'yes' if bf16 else 'no'}, AMX: {'yes' if 'amx_bf16' in flags else 'no'}"
    )
    return {
        "model_name": name,
        "vendor": vendor,
        "family": family,
        "model": model,
        "stepping": stepping,
        "microarch": microarch,
        "flags": present,
        "bf16": bf16,
        "prefers_bf16": prefers,
        "summary": summary,
    }


def resolve_amp(amp: str, device: torch.device) -> str:
    """``"auto"`` -> bf16 on CPUs where it is faster than fp32 (:func:`cpu_prefers_bf16`) and
    on CUDA devices that support it (fp16 on older ones), ``"none"`` elsewhere; any other
    value is returned as it is."""
    if amp != "auto":
        return amp
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if device.type == "cpu" and cpu_prefers_bf16() else "none"


#: The values of ``--precision`` / ``precision=``.
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r} (known: {', '.join(PRECISIONS)})")
    return precision


def resolve_precision(precision: str, device: torch.device | str = "cpu") -> str:
    """``"auto"`` -> ``"bf16"`` on CPUs where it is faster than fp32
    (:func:`cpu_prefers_bf16`), ``"fp16"`` on GPUs, ``"fp32"`` elsewhere.

    fp16 on CUDA rather than bf16: on an H200 (``benchmarks/results/gpu_h200_*``) both ran the
    12 MP upscale in the same time (0.37 s against 0.46 in fp32), but bf16 restored the photo
    0.13 dB below fp32 (its 8-bit mantissa) while fp16 matched fp32 to 0.001 dB. Training's
    autocast (:func:`resolve_amp`) stays bf16 there: its range needs no loss scaling."""
    check_precision(precision)
    if precision != "auto":
        return precision
    dev = torch.device(device)
    if dev.type == "cuda":
        return "fp16"
    if dev.type == "mps":
        return "fp16"
    return "bf16" if dev.type == "cpu" and cpu_prefers_bf16() else "fp32"


def inference_autocast(precision: str, device: torch.device | str = "cpu"):
    """The autocast context for the *restoring* pass at ``precision``.

    Under it the dense blocks compute in the reduced dtype while the invertible trunk, the
    Haar transform and the latent sampler stay in float32 (the dense block casts its input
    and returns its output in the compute dtype; the couplings' additions promote back).
    The downscale never runs under it: bf16 changes many of the 8-bit thumbnail values
    (measured on the bundled sain-x2-jpeg: about a third by one level on an AMD EPYC with
    AVX512-bf16; 16 %, some by two levels, on an Intel Xeon with AMX), while the restored image
    stays within 0.02 dB (benchmarks/bench_inference.py checks both).
    """
    import contextlib

    p = resolve_precision(precision, device)
    if p == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=_DTYPES[p])


def downscale_precision(precision: str) -> str:
    """The precision of the *thumbnail* pass: ``auto`` keeps it in fp32 (bf16 would change
    many of its 8-bit values, see :func:`inference_autocast`); an explicit ``bf16``/``fp16`` is obeyed."""
    return "fp32" if check_precision(precision) == "auto" else precision
