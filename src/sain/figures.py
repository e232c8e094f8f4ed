"""Comparison figures: labelled, enlarged crops of restored images side by side.

    rows of (image, caption) ─crop to detail_window (highest luma variance)─> zoom (nearest) ─> grid

:func:`roundtrip_captions` gives the original / bicubic / SAIN row of a round trip
(:class:`sain.compare.RoundtripResult`), as ``sain roundtrip`` and ``sain demo`` draw it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from .imaging import to_uint8
from .metrics import rgb_to_y

if TYPE_CHECKING:
    from .compare import RoundtripResult

__all__ = ["comparison_image", "detail_window", "fmt_value", "roundtrip_captions"]


def fmt_value(v: float | None, spec: str) -> str:
    """``format(v, spec)``, or ``"-"`` for a missing or non-finite value."""
    return "-" if v is None or not math.isfinite(v) else format(v, spec)


def detail_window(img: Tensor, size: int = 256, stride: int = 16) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of the ``size``-square window of highest luma variance.

    Windows are tried on a ``stride`` grid; an image smaller than ``size`` gives itself.
    """
    h, w = img.shape[-2:]
    wh, ww = min(size, h), min(size, w)
    if wh == h and ww == w:
        return 0, 0, h, w
    y = torch.from_numpy(rgb_to_y(img)).float()[None, None]
    mean = F.avg_pool2d(y, (wh, ww), stride=stride)
    var = F.avg_pool2d(y * y, (wh, ww), stride=stride) - mean * mean
    idx = int(torch.argmax(var.flatten()))
    top, left = (idx // var.shape[-1]) * stride, (idx % var.shape[-1]) * stride
    return top, left, wh, ww


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow without FreeType: fixed bitmap font
        return ImageFont.load_default()


def comparison_image(
    rows: Sequence[Sequence[tuple[Tensor, str]]], title: str = "", window: tuple[int, int, int, int] | None = None
) -> Image.Image:
    """A grid of labelled crops: one row per entry, one ``(image, caption)`` per column.

    All images are cropped to the same ``window`` (default: :func:`detail_window` of the
    first image) and enlarged with nearest-neighbour (at least 2x, small crops more) so
    that compression and restoration artefacts are visible.
    """
    if not rows or not rows[0]:
        raise ValueError("comparison_image needs at least one image")
    first = rows[0][0][0]
    top, left, ch, cw = window or detail_window(first)
    zoom = min(16, max(2, math.ceil(256 / max(ch, cw))))
    pw, ph = cw * zoom, ch * zoom
    font, tfont = _font(15), _font(17)
    pad, cap_h = 8, 24
    title_h = 30 if title else 0
    ncol = max(len(r) for r in rows)
    canvas = Image.new(
        "RGB", (pad + ncol * (pw + pad), title_h + pad + len(rows) * (ph + cap_h + pad)), (255, 255, 255)
    )
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((pad, 8), title, fill=(0, 0, 0), font=tfont)
    for r, row in enumerate(rows):
        y = title_h + pad + r * (ph + cap_h + pad)
        for c, (img, caption) in enumerate(row):
            x = pad + c * (pw + pad)
            crop = Image.fromarray(to_uint8(img[:, top : top + ch, left : left + cw]))
            canvas.paste(crop.resize((pw, ph), Image.Resampling.NEAREST), (x, y))
            draw.text((x + 2, y + ph + 4), caption, fill=(0, 0, 0), font=font)
    return canvas


def roundtrip_captions(r: RoundtripResult) -> list[tuple[Tensor, str]]:
    """The (image, caption) triple original / bicubic / SAIN of one round trip."""
    f = r.fmt.upper()
    return [
        (r.original, "original"),
        (
            r.bicubic.image,
            f"bicubic  {f} q{r.bicubic.quality}  {r.bicubic.bytes:,} B  {fmt_value(r.bicubic.psnr_y, '.2f')} dB",
        ),
        (
            r.sain.image,
            f"{r.sain.method} x{r.scale}  {f} q{r.quality}  {r.sain.bytes:,} B  {fmt_value(r.sain.psnr_y, '.2f')} dB",
        ),
    ]
