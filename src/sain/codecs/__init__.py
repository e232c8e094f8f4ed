"""Codecs that sit between the downscaler and the upscaler.

- :data:`CODECS` / :func:`get_codec`: what the package knows of each codec (suffix,
  Pillow format, quality range, differentiable surrogate); :func:`check_quality`, the
  one quality check.
- :func:`quantize`: 8-bit rounding with a straight-through gradient (``Q``);
  :func:`quantize_u8` / :func:`to_levels`: the same rounding for inference.
- :func:`diff_jpeg` / :class:`DiffJPEG`: differentiable JPEG surrogate (``D``).
- :func:`codec_roundtrip` / :class:`RealCodec`: real JPEG / WebP / AVIF / PNG
  through Pillow, no gradient (``R``).
"""

from .diffjpeg import DiffJPEG, diff_jpeg, quality_tables, smooth_round
from .quantize import quantize, quantize_u8, to_levels
from .real import FORMATS, RealCodec, available_formats, check_format, codec_roundtrip, decode, encode
from .registry import CODECS, Codec, available_codecs, check_quality, get_codec

__all__ = [
    "CODECS",
    "FORMATS",
    "Codec",
    "DiffJPEG",
    "RealCodec",
    "available_codecs",
    "available_formats",
    "check_format",
    "check_quality",
    "codec_roundtrip",
    "decode",
    "diff_jpeg",
    "encode",
    "get_codec",
    "quality_tables",
    "quantize",
    "quantize_u8",
    "smooth_round",
    "to_levels",
]
