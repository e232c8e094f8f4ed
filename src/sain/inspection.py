"""What an image file says about itself, for ``sain info``: :func:`inspect_thumbnail`.

    file ─Pillow (every pixel decoded: a truncated file fails)─> format, size, mode, alpha, ICC profile
    file ─EXIF ImageDescription─> the sain:v1 record (model, scale, original size, gray, quality)
    JPEG ─quantisation tables─> estimated libjpeg quality (exact, or the nearest and a confidence)
    tables, record ─sain.decoding.choose_quality─> the quality 'sain decode' would restore at, and why

Named ``inspection`` (not ``inspect``) so that it never shadows the standard library's module.
"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from .decoding import choose_quality
from .imaging.io import ImageReadError, open_image
from .thumbnail import META_TAG, PathLike, ThumbnailInfo, read_bytes
from .zoo import ZOO

__all__ = ["inspect_thumbnail"]


def _open(data: bytes, name: str) -> tuple[dict[str, Any], Any]:
    """The file's own properties and its EXIF ImageDescription; ValueError naming ``name``."""
    try:
        with open_image(io.BytesIO(data)) as img:
            fmt, (w, h), mode = img.format, img.size, img.mode
            alpha = mode in ("RGBA", "LA", "PA") or "transparency" in img.info
            icc = bool(img.info.get("icc_profile"))
            text = img.getexif().get(META_TAG)
            img.load()  # every pixel: a truncated file is bad input here as it is for decode
    except ImageReadError as e:
        raise ValueError(str(e).replace("'<bytes>'", f"'{name}'", 1)) from None
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
        raise ValueError(f"cannot read image '{name}': {' '.join(str(e).split()) or type(e).__name__}") from None
    props = {"format": fmt, "width": w, "height": h, "mode": mode, "bytes": len(data), "alpha": alpha}
    return {**props, "icc_profile": icc}, text


def _quality_aware(info: ThumbnailInfo) -> bool | None:
    """Whether the recorded model restores at a quality (``None``: not a zoo model, unknown)."""
    from .models import get_arch

    entry = ZOO.get(info.model)
    return None if entry is None else bool(get_arch(entry.arch).quality_aware)


def _tables(data: bytes) -> dict[str, Any] | None:
    """The estimate from a JPEG's quantisation tables (``None``: not a JPEG, or no tables)."""
    from .codecs.jpeg_quality import estimate_jpeg_quality

    try:
        e = estimate_jpeg_quality(data)
    except ValueError:
        return None
    return {
        "quality": e.quality,
        "exact": e.exact,
        "confidence": round(e.confidence, 4),
        "candidates": list(e.candidates),
    }


def _reason(
    source: str, fmt: str, tables: dict[str, Any] | None, info: ThumbnailInfo | None, aware: bool | None
) -> str:
    """Why ``sain decode`` would restore at the quality it chose, in words."""
    if source == "tables" and tables is not None:
        inexact = "" if tables["exact"] else f" (nearest libjpeg quality, confidence {tables['confidence']:.2f})"
        why = f"from the JPEG's quantisation tables{inexact}"
    elif source == "metadata":
        why = f"recorded in the sain metadata ({fmt} has no quantisation tables)"
    elif source == "lossless":
        why = f"{fmt} is lossless: no codec artefacts to undo"
    elif info is None:
        why = f"{fmt} without quantisation tables and without sain metadata: the model's default"
    else:
        why = "no quantisation tables and no recorded quality (an older thumbnail): the model's default"
    if info is not None and aware is False:
        why += f"; {info.model} is not quality-aware and restores without it"
    return why


def inspect_thumbnail(data_or_path: bytes | PathLike) -> dict[str, Any]:
    """What an image file says about itself (``sain info``), as a JSON-ready dict.

    Args:
        data_or_path: the file, or its bytes.

    Returns:
        ``file`` (its name; ``<bytes>`` for bytes), ``format`` (Pillow's), ``width``,
        ``height``, ``mode``, ``bytes`` (file size), ``alpha``, ``icc_profile`` (bools);
        ``sain_thumbnail`` and ``sain``, the ``sain:v1`` record (``model``, ``scale``,
        ``width`` and ``height`` of the original, ``gray``, ``quality``: ``None`` when not
        recorded) or ``None``; ``sain_error``: why a text that claims to be sain metadata
        is refused ("corrupt sain metadata", as decode refuses it), else ``None``;
        ``jpeg_quality``, the quantisation tables' estimate (``quality``, ``exact``,
        ``confidence``, ``candidates``) or ``None`` (not a JPEG);
        ``decode_quality``: the quality a quality-aware model restores at (``quality``,
        ``source``: ``tables`` / ``metadata`` / ``none``, and ``reason``, in words);
        ``quality_aware``: whether the recorded model uses it (``None``: unknown, a weight
        file or no record); ``notes``: e.g. tables that disagree with the recorded quality.

    Raises:
        OSError: the file cannot be read. ValueError: empty, not an image, or truncated.
        Both with a one-line message naming the file.

    Example:
        >>> from sain.inspection import inspect_thumbnail     # doctest: +SKIP
        >>> d = inspect_thumbnail("thumbs/photo.jpg")          # sain encode --quality 75
        >>> d["sain"]["quality"], d["jpeg_quality"]["quality"], d["decode_quality"]["source"]
        (75, 75, 'tables')
    """
    data, name = read_bytes(data_or_path)
    props, text = _open(data, name)
    notes: list[str] = []
    error = None
    try:
        info = ThumbnailInfo.from_text(text)
    except ValueError as e:  # the file is read; it is its metadata that decode refuses
        info, error = None, str(e)
    tables = _tables(data) if props["format"] == "JPEG" else None
    recorded = None if info is None else info.quality
    choice = choose_quality(data, None, recorded, name)
    if choice.note:
        notes.append(choice.note)
    aware = None if info is None else _quality_aware(info)
    record: dict[str, Any] | None = None
    if info is not None:
        record = {k: getattr(info, k) for k in ("model", "scale", "width", "height", "gray", "quality")}
    return {
        "file": name,
        **props,
        "sain_thumbnail": info is not None,
        "sain": record,
        "sain_error": error,
        "jpeg_quality": tables,
        "decode_quality": {
            "quality": choice.quality,
            "source": choice.source,
            "reason": _reason(choice.source, str(props["format"]), tables, info, aware),
        },
        "quality_aware": aware,
        "notes": notes,
    }
