"""Codecs that sit between the downscaler and the upscaler.

- :func:`quantize`: 8-bit rounding with a straight-through gradient (``Q``).
- :func:`diff_jpeg` / :class:`DiffJPEG`: differentiable JPEG surrogate (``D``).
- :func:`codec_roundtrip` / :class:`RealCodec`: real JPEG / WebP / AVIF / PNG
  through Pillow, no gradient (``R``).
"""

from .diffjpeg import DiffJPEG, diff_jpeg, quality_tables, smooth_round
from .quantize import quantize
from .real import FORMATS, RealCodec, available_formats, check_format, codec_roundtrip, decode, encode

__all__ = [
    "FORMATS",
    "DiffJPEG",
    "RealCodec",
    "available_formats",
    "check_format",
    "codec_roundtrip",
    "decode",
    "diff_jpeg",
    "encode",
    "quality_tables",
    "quantize",
    "smooth_round",
]
