"""Bicubic at the same bytes as a network: the bitrate match and its scores.

The paper compares every method at the same codec quality, but at the same quality a
learned LR is usually a larger file than bicubic's. The comparison at the same bytes
re-encodes the bicubic LR (MATLAB-style bicubic, 8 bits) at the quality whose file
matches the network's, restores it with MATLAB-style bicubic and scores it::

    HR ─network─> LR ─codec @ Q──────────────> N bytes ─> restored ─> PSNR-Y  ─┐ gain (dB)
    HR ─bicubic─> LR ─codec @ Q' (bytes ~ N)─> N' bytes ─> restored ─> PSNR-Y ─┘

:func:`match_quality` finds ``Q'`` (used by ``sain roundtrip`` with the rule
``"not-above"``: the largest file not above N; and by ``sain eval`` with ``"closest"``:
the file closest to N over every quality 1..100, ties to the smaller one). :class:`BicubicAtBytes` holds one image's
bicubic LR, its files and restorations by quality (each computed once for every network
and quality of the evaluation) and gives the same-bytes row of a network's result.

With a re-compression (``sain eval --recompress R``) the bytes matched are those the
receiver gets: the network's file re-encoded at R, against bicubic's file at ``Q'``
re-encoded at R; bicubic is restored from that re-encoded file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import Tensor

from .codecs import decode, encode
from .imaging import to_uint8
from .metrics import psnr, ssim
from .pipeline import BicubicMethod
from .reports import SAME_BYTES_COLUMNS, aggregate

__all__ = ["RULES", "BicubicAtBytes", "aggregate_same_bytes", "match_quality", "reach_note"]

#: The match rules of :func:`match_quality`.
RULES = ("not-above", "closest")


def match_quality(
    lr_u8: np.ndarray,
    fmt: str,
    target_bytes: int,
    rule: str = "not-above",
    encoder: Callable[[int], bytes] | None = None,
) -> tuple[int, bytes]:
    """The quality 1..100 whose file matches ``target_bytes``.

    ``"not-above"`` (``sain roundtrip``): the largest file not above the target, found by
    bisection (file size grows with quality, up to small wobbles); quality 100 when even
    its file is not above the target, quality 1 when even its file is larger.
    ``"closest"`` (``sain eval``): the file closest to the target, ties to the smaller
    file (then to the lower quality), over every quality: sizes are not always monotone
    in quality, less so after a re-encode, so a bisection could miss the closest one.

    Args:
        lr_u8: the (H, W, 3) uint8 image to encode.
        fmt: its codec.
        target_bytes: the size to match.
        rule: ``"not-above"`` or ``"closest"``.
        encoder: the file at a quality, instead of ``encode(lr_u8, fmt, q)`` (e.g. the file
            a receiver gets after a re-compression); called at most once per quality.

    Returns:
        ``(quality, file bytes)``.
    """
    if rule not in RULES:
        raise ValueError(f"unknown match rule {rule!r} (one of {', '.join(RULES)})")
    cache: dict[int, bytes] = {}

    def at(q: int) -> bytes:
        if q not in cache:
            cache[q] = encoder(q) if encoder is not None else encode(lr_u8, fmt, q)
        return cache[q]

    if rule == "closest":
        q = min(range(1, 101), key=lambda q: (abs(len(at(q)) - target_bytes), len(at(q)), q))
        return q, at(q)
    if len(at(100)) <= target_bytes:
        return 100, at(100)
    if len(at(1)) > target_bytes:
        return 1, at(1)
    lo, hi = 1, 100  # size(lo) <= target < size(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if len(at(mid)) <= target_bytes:
            lo = mid
        else:
            hi = mid
    return lo, at(lo)


def reach_note(file_bytes: int, target_bytes: int, sizes: Iterable[int]) -> str:
    """Whether the matched file (``file_bytes``, one of ``sizes``: those of every quality)
    could reach the target: ``""``; ``"all-smaller"`` when every file is smaller than the
    target (quality 100 cannot reach it); ``"all-larger"`` when every file is larger
    (quality 1 cannot go below it)."""
    sizes = list(sizes)
    if file_bytes < target_bytes and file_bytes >= max(sizes):
        return "all-smaller"
    if file_bytes > target_bytes and file_bytes <= min(sizes):
        return "all-larger"
    return ""


class BicubicAtBytes:
    """One image's bicubic baseline at any number of bytes (files and scores cached by quality).

    Args:
        hr: the (3, H, W) HR image in [0, 1] (already cropped as the evaluation crops it).
        scale: the rescaling factor.
        fmt: the codec.
        recompress: the quality of a second encode (the receiver's file), or ``None``.
    """

    def __init__(self, hr: Tensor, scale: int, fmt: str, recompress: int | None = None) -> None:
        self.hr = hr
        self.scale = scale
        self.fmt = fmt
        self.recompress = recompress
        self._bicubic = BicubicMethod(scale)
        self.lr_u8 = to_uint8(self._bicubic.downscale(hr.unsqueeze(0))[0])
        self._files: dict[int, bytes] = {}
        self._scores: dict[int, tuple[float, float]] = {}

    def file(self, quality: int) -> bytes:
        """The file the receiver gets when bicubic's LR is sent at ``quality``."""
        if quality not in self._files:
            data = encode(self.lr_u8, self.fmt, quality)
            if self.recompress is not None:
                data = encode(decode(data), self.fmt, self.recompress)
            self._files[quality] = data
        return self._files[quality]

    def scores(self, quality: int) -> tuple[float, float]:
        """PSNR-Y and SSIM-Y of bicubic restored from :meth:`file` against the HR
        (``scale`` pixels cropped per border, as the evaluation scores)."""
        if quality not in self._scores:
            received = torch.from_numpy(decode(self.file(quality))).permute(2, 0, 1).float()[None] / 255
            restored = self._bicubic.upscale(received)[0]
            self._scores[quality] = (
                psnr(restored, self.hr, self.scale, y_channel=True),
                ssim(restored, self.hr, self.scale, y_channel=True),
            )
        return self._scores[quality]

    def row(self, target_bytes: int, psnr_y: float, ssim_y: float) -> dict:
        """The same-bytes comparison of a network result of ``target_bytes`` bytes (the
        receiver's) scoring ``psnr_y`` / ``ssim_y``: bicubic at the closest quality."""
        q, data = match_quality(self.lr_u8, self.fmt, target_bytes, "closest", self.file)
        b_psnr, b_ssim = self.scores(q)
        pixels = self.hr.shape[-2] * self.hr.shape[-1]
        return {
            "bytes": target_bytes,
            "bpp": 8.0 * target_bytes / pixels,
            "psnr_y": psnr_y,
            "ssim_y": ssim_y,
            "bicubic_quality": q,
            "bicubic_bytes": len(data),
            "bicubic_bpp": 8.0 * len(data) / pixels,
            "bicubic_psnr_y": b_psnr,
            "bicubic_ssim_y": b_ssim,
            "gain_db": psnr_y - b_psnr,
            "reach": reach_note(len(data), target_bytes, (len(self.file(k)) for k in range(1, 101))),
        }


def aggregate_same_bytes(rows: list[dict]) -> list[dict]:
    """Per-dataset means of :meth:`BicubicAtBytes.row` rows (one per dataset x network x
    quality; ``bicubic_quality`` is the mean matched quality) with the number of images
    where bicubic could not reach the network's size (:func:`reach_note`): ``unmatched_high``
    (every bicubic file smaller) and ``unmatched_low`` (every one larger)."""
    records = aggregate(rows, SAME_BYTES_COLUMNS)
    for rec in records:
        sel = [
            r["reach"]
            for r in rows
            if (r["dataset"], r["model"], r["quality"]) == (rec["dataset"], rec["model"], rec["quality"])
        ]
        rec["unmatched_high"] = sel.count("all-smaller")
        rec["unmatched_low"] = sel.count("all-larger")
    return records
