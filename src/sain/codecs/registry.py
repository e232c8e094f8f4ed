"""The codecs the package knows, described once: name, file suffix, Pillow format, quality range.

Every place that needs a codec's facts (the real codec, the thumbnail writer, the
evaluation, :func:`sain.imaging.write_image`) reads them from :data:`CODECS`, and every
place that validates a quality calls :func:`check_quality`. Adding a codec is one
:class:`Codec` entry here (plus its tests)::

    Codec("jpeg", suffix="jpg", pil_format="JPEG", pil_feature=None,
          quality_range=(1, 100), lossy=True, differentiable_surrogate="diff_jpeg")

Whether the installed Pillow can code a format is :attr:`Codec.available`
(``PIL.features.check`` of :attr:`Codec.pil_feature`; JPEG and PNG are always built in).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import features

__all__ = [
    "CODECS",
    "QUALITY_RANGE",
    "Codec",
    "available_codecs",
    "check_quality",
    "get_codec",
]

#: The quality range of every codec of the package (Pillow's JPEG, WebP and AVIF scale).
QUALITY_RANGE: tuple[int, int] = (1, 100)


@dataclass(frozen=True)
class Codec:
    """One image codec as Pillow codes it.

    Attributes:
        name: the package's name (``"jpeg"``), lower case; also the ``--format`` value.
        suffix: file suffix without the dot (``"jpg"``).
        pil_format: the format name :meth:`PIL.Image.Image.save` takes (``"JPEG"``).
        pil_feature: the ``PIL.features`` name to check before use, ``None`` when the
            codec is always built into Pillow.
        quality_range: ``(lowest, highest)`` quality the encoder takes; ``None`` for a
            lossless codec, which takes no quality.
        lossy: whether decoding loses information (what a thumbnail needs).
        differentiable_surrogate: name of the differentiable stand-in in
            :mod:`sain.codecs` used in training (``"diff_jpeg"``), ``None`` if there is none;
            :meth:`surrogate` returns the function.
    """

    name: str
    suffix: str
    pil_format: str
    pil_feature: str | None
    quality_range: tuple[int, int] | None
    lossy: bool
    differentiable_surrogate: str | None = None

    @property
    def available(self) -> bool:
        """Whether the installed Pillow can encode and decode this codec."""
        return self.pil_feature is None or bool(features.check(self.pil_feature))

    def surrogate(self) -> Callable[..., Any] | None:
        """The differentiable surrogate (e.g. :func:`sain.codecs.diff_jpeg`), or ``None``."""
        if self.differentiable_surrogate is None:
            return None
        from . import diffjpeg

        return getattr(diffjpeg, self.differentiable_surrogate)


#: Every codec the package knows, by name, in the order they are listed to users.
CODECS: dict[str, Codec] = {
    c.name: c
    for c in [
        Codec("jpeg", "jpg", "JPEG", None, QUALITY_RANGE, lossy=True, differentiable_surrogate="diff_jpeg"),
        Codec("webp", "webp", "WEBP", "webp", QUALITY_RANGE, lossy=True),
        Codec("avif", "avif", "AVIF", "avif", QUALITY_RANGE, lossy=True),
        Codec("png", "png", "PNG", None, None, lossy=False),
    ]
}

_ALIASES = {"jpg": "jpeg"}


def get_codec(name: str | Codec) -> Codec:
    """The codec called ``name`` (case-insensitive; ``"jpg"`` is ``"jpeg"``).

    Raises:
        ValueError: an unknown name; the one-line message lists the known ones.
    """
    if isinstance(name, Codec):
        return name
    key = _ALIASES.get(name.lower(), name.lower()) if isinstance(name, str) else None
    if key not in CODECS:
        raise ValueError(f"unknown format {name!r} (supported: {', '.join(CODECS)})")
    return CODECS[key]


def available_codecs() -> tuple[Codec, ...]:
    """The codecs of :data:`CODECS` the installed Pillow can code, in the same order."""
    return tuple(c for c in CODECS.values() if c.available)


def check_quality(quality: Any, codec: str | Codec | None = None, *, integer: bool = True) -> Any:
    """Validate a codec quality; the one check every command and function uses.

    Args:
        quality: the value to check.
        codec: the codec it is for (its :attr:`Codec.quality_range`); ``None`` or a
            lossless codec: :data:`QUALITY_RANGE`, the package-wide range.
        integer: require an integer (a real codec); ``False`` also takes real numbers
            (the differentiable JPEG's quality), finite and in range.

    Returns:
        ``int(quality)`` (``float(quality)`` when ``integer`` is false).

    Raises:
        ValueError: a value out of range, or not an integer when ``integer`` is true
            (``True``/``False`` are not qualities).
        TypeError: ``integer`` is false and ``quality`` is not a real number.
    """
    rng = get_codec(codec).quality_range if codec is not None else None
    lo, hi = rng or QUALITY_RANGE
    kind: Any = numbers.Integral if integer else numbers.Real
    if isinstance(quality, bool) or not isinstance(quality, kind):
        if integer:
            raise ValueError(f"quality must be an integer in {lo}..{hi}, got {quality!r}")
        raise TypeError(f"quality must be a number, got {type(quality).__name__}")
    value = int(quality) if integer else float(quality)
    if not lo <= value <= hi:  # also false for NaN
        raise ValueError(f"quality {quality} out of range {lo}..{hi}")
    return value
