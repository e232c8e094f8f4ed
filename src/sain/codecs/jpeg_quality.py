"""The libjpeg quality of a JPEG file, read back from its quantisation tables.

libjpeg (and Pillow and ``cjpeg``, which use it) writes the ITU-T T.81 Annex K standard
tables scaled by the quality ``q`` (``jpeg_quality_scaling`` and ``jpeg_add_quant_table``)::

    S     = 5000 // q            (q < 50)        S = 200 - 2 q   (q >= 50)      (percent)
    entry = (T * S + 50) // 100, then 1 if <= 0, at most 32767, at most 255 if baseline

Pillow always forces baseline tables (``force_baseline = TRUE``); ``cjpeg`` does not unless
given ``-baseline``, so below about QF 25 its tables hold 16-bit entries above 255. Both
variants are tried for every q in 1..100::

    file ─Pillow─> tables (natural order) ─┬─ equal to the scaled standard tables of some q ──> exact
                                           └─ otherwise: the q minimising the mean squared
                                              log-ratio of the entries ───────────────────> nearest

A match needs the luminance table (the first component's) and, when the file has colour
components, the chrominance table (theirs) to be equal. In 1..100 every quality gives
distinct baseline tables (QF 1's luminance table is all 255, QF 2's all 255 but one 250),
so an exact match names one quality; should several qualities ever give identical tables
(a custom writer's clamping), all of them are reported in ``candidates`` and ``quality`` is
the highest of them, the one that spends the most bytes for those tables.

Files from other encoders (Photoshop, mozjpeg, cameras) carry other tables: the nearest
standard quality is reported with ``exact=False`` and a confidence ``exp(-rms / 0.25)``,
``rms`` the root mean squared natural-log ratio of the entries, averaged over the two
tables. Standard tables scaled by a factor of their own land close to another quality's
(QF 60's times 1.1: QF 56, confidence 0.94); random tables score about 0.01.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from functools import cache
from typing import Any

from PIL import Image, UnidentifiedImageError

from .diffjpeg import CHROMINANCE_TABLE, LUMINANCE_TABLE

#: Width of the confidence: ``confidence = exp(-rms_log_ratio / CONFIDENCE_SCALE)``.
CONFIDENCE_SCALE = 0.25

_LUMA = tuple(v for row in LUMINANCE_TABLE for v in row)
_CHROMA = tuple(v for row in CHROMINANCE_TABLE for v in row)


@dataclass(frozen=True)
class QualityEstimate:
    """What the quantisation tables of a JPEG say about its quality.

    Attributes:
        quality: the libjpeg quality (1..100) of the tables, or the nearest one.
        exact: the tables are exactly libjpeg's scaled standard tables at ``quality``.
        confidence: 1.0 for an exact match; otherwise in (0, 1), from the table distance.
        candidates: every quality whose tables match exactly (ascending; usually one), or,
            for an inexact match, the qualities tied at the smallest distance.
    """

    quality: int
    exact: bool
    confidence: float
    candidates: tuple[int, ...]


def _scaling(quality: int) -> int:
    """libjpeg's ``jpeg_quality_scaling``: quality 1..100 -> table scale in percent."""
    q = min(max(int(quality), 1), 100)
    return 5000 // q if q < 50 else 200 - 2 * q


@cache
def libjpeg_tables(quality: int, baseline: bool = True) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """libjpeg's (luminance, chrominance) tables at ``quality``, 64 entries each in natural
    (row-major) order, as ``jpeg_set_quality(cinfo, quality, force_baseline=baseline)`` sets them.

    Args:
        quality: integer in 1..100.
        baseline: clamp entries at 255 (Pillow always does; ``cjpeg`` only with ``-baseline``).
    """
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ValueError(f"quality must be an int in 1..100, got {quality!r}")
    s = _scaling(quality)
    hi = 255 if baseline else 32767
    out = []
    for std in (_LUMA, _CHROMA):
        out.append(tuple(min(max((t * s + 50) // 100, 1), hi) for t in std))
    return out[0], out[1]


def _read_tables(data_or_path) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """``(luma, chroma or None)`` of a JPEG (bytes, a path or a binary file object)."""
    src: Any
    if isinstance(data_or_path, (bytes, bytearray, memoryview)):
        src, name = io.BytesIO(bytes(data_or_path)), "data"
    elif isinstance(data_or_path, (str, os.PathLike)):
        src, name = os.fspath(data_or_path), os.fspath(data_or_path)
    elif hasattr(data_or_path, "read"):
        src, name = data_or_path, getattr(data_or_path, "name", "file")
    else:
        raise ValueError(f"expected JPEG bytes, a path or a binary file, got {type(data_or_path).__name__}")
    try:
        with Image.open(src) as im:
            fmt = im.format
            tables = dict(getattr(im, "quantization", None) or {}) if fmt == "JPEG" else {}
            layer = list(getattr(im, "layer", None) or [])
    except FileNotFoundError:
        raise ValueError(f"{name}: no such file") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"{name}: not a readable image ({e})") from None
    if fmt != "JPEG":
        raise ValueError(f"{name}: a {fmt} file, not a JPEG: its quality cannot be read from quantisation tables")
    if not tables:
        raise ValueError(f"{name}: JPEG without quantisation tables")
    # the table of the first component is the luminance's, the others' the chrominance's
    ids = [c[3] for c in layer if len(c) >= 4]
    luma_id = ids[0] if ids and ids[0] in tables else min(tables)
    chroma_ids = [i for i in ids[1:] if i in tables and i != luma_id]
    if not ids and len(tables) > 1:
        chroma_ids = [min(i for i in tables if i != luma_id)]
    luma = tuple(int(v) for v in tables[luma_id])
    chroma = tuple(int(v) for v in tables[chroma_ids[0]]) if chroma_ids else None
    if len(luma) != 64 or (chroma is not None and len(chroma) != 64):
        raise ValueError(f"{name}: quantisation tables of unexpected size")
    return luma, chroma


def _distance(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """Mean squared natural-log ratio of two tables' entries."""
    return sum((math.log(x) - math.log(y)) ** 2 for x, y in zip(a, b, strict=True)) / len(a)


def estimate_jpeg_quality(data_or_path) -> QualityEstimate:
    """The libjpeg quality of a JPEG, from its quantisation tables (module docstring).

    Args:
        data_or_path: the JPEG file's bytes, its path (``str`` / ``os.PathLike``) or a
            binary file object.

    Returns:
        A :class:`QualityEstimate`: exact for libjpeg's scaled standard tables (baseline or
        16-bit), the nearest standard quality with ``exact=False`` otherwise.

    Raises:
        ValueError: (one line) the input is missing, unreadable, or not a JPEG.

    Example:
        >>> from PIL import Image
        >>> buf = io.BytesIO(); Image.new("RGB", (16, 16)).save(buf, format="JPEG", quality=83)
        >>> estimate_jpeg_quality(buf.getvalue())
        QualityEstimate(quality=83, exact=True, confidence=1.0, candidates=(83,))
    """
    luma, chroma = _read_tables(data_or_path)
    exact = []
    for q in range(1, 101):
        for baseline in (True, False):
            ref_l, ref_c = libjpeg_tables(q, baseline)
            if luma == ref_l and (chroma is None or chroma == ref_c):
                exact.append(q)
                break
    if exact:
        return QualityEstimate(max(exact), True, 1.0, tuple(exact))
    dist = {}
    clipped_l = tuple(max(v, 1) for v in luma)
    clipped_c = None if chroma is None else tuple(max(v, 1) for v in chroma)
    for q in range(1, 101):
        best = math.inf
        for baseline in (True, False):
            ref_l, ref_c = libjpeg_tables(q, baseline)
            d = _distance(clipped_l, ref_l)
            if clipped_c is not None:
                d = (d + _distance(clipped_c, ref_c)) / 2
            best = min(best, d)
        dist[q] = best
    d_min = min(dist.values())
    tied = tuple(q for q in range(1, 101) if dist[q] <= d_min + 1e-12)
    confidence = math.exp(-math.sqrt(d_min) / CONFIDENCE_SCALE)
    return QualityEstimate(max(tied), False, confidence, tied)
