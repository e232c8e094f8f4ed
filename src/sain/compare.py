"""SAIN against bicubic at the same bytes: bitrate matching, round trips and their scores.

For each quality::

    HR ─SAIN (ModelMethod)──> LR ─codec @ Q──────────────────> N bytes ─> restored ─┐
    HR ─bicubic (BicubicMethod)─> LR ─codec @ the largest Q' with <= N bytes ─> restored ─┤
                                                         PSNR-Y / SSIM-Y vs the original <┘

This is the work of ``sain roundtrip`` and ``sain demo``; the figures are drawn by
:mod:`sain.figures`. The match (:func:`match_quality`, rule ``"not-above"``) lives in
:mod:`sain.same_bytes`, shared with ``sain eval``'s same-bytes table.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .codecs import check_quality, decode, encode
from .encoding import (
    SUFFIXES,
    as_hr4,
    check_format,
    check_target,
    decode_image,
    encode_lr,
    is_gray,
    pad_to_multiple,
)
from .figures import comparison_image, fmt_value, roundtrip_captions
from .fileio import atomic_paths
from .imaging import DEFAULT_MAX_PIXELS, to_uint8, write_image
from .imaging.metadata import Metadata, check_icc, save_args
from .imaging.photo import read_photo
from .metrics import psnr, ssim
from .models import RescalingModel
from .pipeline import BicubicMethod, ModelMethod, Tile, quantize_u8
from .same_bytes import match_quality
from .thumbnail import PathLike, ThumbnailInfo, load_coder, model_id
from .zoo import DEFAULT_MODEL, model_name

__all__ = [
    "SAMPLE_IMAGE",
    "Restored",
    "RoundtripResult",
    "match_quality",
    "roundtrip_file",
    "roundtrip_image",
    "roundtrip_outputs",
]

#: The photo ``sain demo`` uses: kodim23 of the Kodak suite (768 x 512).
SAMPLE_IMAGE = Path(str(resources.files("sain") / "data" / "sample.png"))


@dataclass
class Restored:
    """One restored image of a round trip and its scores against the original."""

    method: str  # "bicubic" or the model name
    quality: int
    bytes: int  # compressed LR bytes (no metadata)
    image: Tensor  # (3, H, W) in [0, 1]
    psnr_y: float
    ssim_y: float


@dataclass
class RoundtripResult:
    """:func:`roundtrip_image` at one quality: the original, bicubic and SAIN."""

    original: Tensor
    scale: int
    fmt: str
    quality: int
    sain: Restored
    bicubic: Restored
    thumbnail: bytes = b""  # the SAIN thumbnail file (with metadata)
    bicubic_lr: bytes = b""  # the bicubic LR file at the matched quality
    notes: list[str] = field(default_factory=list)  # what was done to the photo (colour profile, alpha)

    def bytes_note(self) -> str:
        """Empty when bicubic's file is the largest not above SAIN's; otherwise why it is not
        the same bytes (bicubic at quality 100 is smaller, or at quality 1 larger)."""
        b, s = self.bicubic, self.sain
        if b.quality == 100 and b.bytes < s.bytes:
            return f"bicubic's largest file is {b.bytes:,} bytes < SAIN's {s.bytes:,} (quality 100 cannot reach it)"
        if b.quality == 1 and b.bytes > s.bytes:
            return f"bicubic's smallest file is {b.bytes:,} bytes > SAIN's {s.bytes:,} (quality 1 cannot go below it)"
        return ""

    def table(self) -> str:
        """The two rows (bicubic, SAIN) with columns sized to their values, and the
        :meth:`bytes_note` when the bytes could not be matched."""
        h, w = self.original.shape[-2:]
        head = ["method", "quality", "LR bytes", "bpp", "PSNR-Y", "SSIM-Y"]
        rows = [
            [
                r.method,
                str(r.quality),
                f"{r.bytes:,}",
                f"{8 * r.bytes / (h * w):.3f}",
                fmt_value(r.psnr_y, ".2f"),
                fmt_value(r.ssim_y, ".4f"),
            ]
            for r in (self.bicubic, self.sain)
        ]
        widths = [max(len(row[k]) for row in [head, *rows]) for k in range(len(head))]
        lines = [
            "  ".join(c.ljust(wd) if k == 0 else c.rjust(wd) for k, (c, wd) in enumerate(zip(row, widths, strict=True)))
            for row in [head, *rows]
        ]
        note = self.bytes_note()
        return "\n".join(lines + ([f"note: {note}"] if note else []))


def _scores(restored: Tensor, original: Tensor, crop: int) -> tuple[float, float]:
    out = []
    for fn in (psnr, ssim):
        try:
            out.append(fn(restored, original, crop_border=crop, y_channel=True))
        except ValueError:  # too small for the crop or the SSIM window
            out.append(float("nan"))
    return out[0], out[1]


def roundtrip_image(
    hr: Tensor,
    model: str | PathLike | RescalingModel | None = DEFAULT_MODEL,
    fmt: str = "jpeg",
    qualities: int | Sequence[int] = 75,
    seed: int | None = 0,
    tile: Tile = "auto",
    progress: bool = False,
    precision: str = "auto",
    device: str | None = None,
    metadata: Metadata | None = None,
) -> RoundtripResult | list[RoundtripResult]:
    """Encode, decode and compare with bicubic at the same bytes.

    For each quality: the SAIN LR is compressed at that quality; the bicubic LR (MATLAB
    bicubic, 8 bits) is compressed at the quality whose file is the largest not above the
    SAIN LR's bytes (:func:`match_quality`) and restored with MATLAB bicubic. Both are
    scored against the original with PSNR-Y / SSIM-Y, ``scale`` pixels cropped per border.
    The downscales are computed once for all qualities.

    Args:
        hr: (3, H, W) RGB float in [0, 1].
        qualities: one quality (returns one result) or several (returns a list).
        model, fmt, seed, tile, precision, device: as :func:`encode_image` / :func:`decode_image`.
        progress: show a tqdm bar on stderr (the downscale, then one step per quality).
        metadata: what the SAIN thumbnail is tagged with (ICC profile, EXIF, XMP), as in
            :func:`encode_image`; the LR bytes compared are without it.
    """
    from tqdm import tqdm

    fmt = check_format(fmt)
    single = isinstance(qualities, int | np.integer)
    qs = [check_quality(q) for q in ([qualities] if isinstance(qualities, int | np.integer) else qualities)]
    m = load_coder(model)
    s = m.scale
    hr4 = as_hr4(hr)
    h, w = hr4.shape[-2:]
    original = quantize_u8(hr4[0])
    padded = pad_to_multiple(hr4, s)
    info = ThumbnailInfo(model=model_id(m), scale=s, width=int(w), height=int(h), gray=is_gray(hr4))
    bar = tqdm(total=len(qs) + 1, desc="downscale", file=sys.stderr, disable=not progress, leave=False)
    bicubic = BicubicMethod(s)
    lr_sain = to_uint8(ModelMethod(m, tile, precision, device).downscale(padded)[0])
    lr_bic = to_uint8(bicubic.downscale(padded)[0])
    bar.update(1)
    results = []
    for q in qs:
        bar.set_description(f"quality {q}")
        thumb = encode_lr(lr_sain, fmt, q, info, metadata)
        payload = len(encode(lr_sain, fmt, q))
        sain_hr = decode_image(thumb, m, seed, tile=tile, precision=precision, device=device)
        bq, bdata = match_quality(lr_bic, fmt, payload)
        received = torch.from_numpy(decode(bdata)).permute(2, 0, 1).float()[None] / 255
        bic_hr = bicubic.upscale(received)[0, :, :h, :w]
        results.append(
            RoundtripResult(
                original=original,
                scale=s,
                fmt=fmt,
                quality=q,
                sain=Restored(model_name(m), q, payload, sain_hr, *_scores(sain_hr, original, s)),
                bicubic=Restored("bicubic", bq, len(bdata), bic_hr, *_scores(bic_hr, original, s)),
                thumbnail=thumb,
                bicubic_lr=bdata,
            )
        )
        bar.update(1)
    bar.close()
    return results[0] if single else results


def roundtrip_outputs(src: PathLike, outdir: PathLike, fmt: str) -> dict[str, Path]:
    """The files :func:`roundtrip_file` writes for ``src`` into ``outdir``."""
    stem, out = Path(src).stem, Path(outdir)
    fmt = check_format(fmt)
    return {
        "thumbnail": out / f"{stem}.{SUFFIXES[fmt]}",
        "restored": out / f"{stem}.png",
        "bicubic": out / f"{stem}.bicubic.png",
        "comparison": out / f"{stem}.compare.png",
    }


def roundtrip_file(
    src: PathLike,
    outdir: PathLike,
    model: str | PathLike | RescalingModel | None = DEFAULT_MODEL,
    fmt: str = "jpeg",
    quality: int = 75,
    seed: int | None = 0,
    force: bool = False,
    tile: Tile = "auto",
    precision: str = "auto",
    device: str | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    background: tuple[int, int, int] = (255, 255, 255),
    frame: int | None = None,
    icc: str = "keep",
    keep_metadata: bool = False,
) -> tuple[RoundtripResult, dict[str, Path]]:
    """:func:`roundtrip_image` on a file, writing into ``outdir``: the thumbnail
    ``<stem>.<ext>``, the restored ``<stem>.png``, the bicubic restoration
    ``<stem>.bicubic.png`` and the side-by-side ``<stem>.compare.png``.

    The photo is read as :func:`~sain.encoding.encode_file` reads it (``icc``,
    ``keep_metadata``), except that transparency is always composited onto ``background``
    (the scores compare opaque pictures). With ``icc="keep"`` the four files are tagged
    with the photo's ICC profile; the thumbnail and the restored PNG carry its EXIF and
    XMP with ``keep_metadata``.

    Returns:
        The result and the paths written (keys ``thumbnail``, ``restored``, ``bicubic``,
        ``comparison``).
    """
    check_icc(icc)
    src = Path(src)
    outs = roundtrip_outputs(src, outdir, fmt)
    for p in outs.values():
        check_target(p, force, src)
    ph = read_photo(src, max_pixels, background, frame, icc, keep_metadata)  # as encode_file reads it
    hr = ph.image
    meta = ph.metadata
    r = roundtrip_image(hr, model, fmt, quality, seed, tile, precision=precision, device=device, metadata=meta)
    assert isinstance(r, RoundtripResult)
    r.notes = ph.notes
    h, w = hr.shape[-2:]
    same = f"({r.bytes_note()})" if r.bytes_note() else "at the same bytes"
    title = f"{src.name}  {w}x{h}  x{r.scale}  {r.fmt.upper()}: bicubic vs {r.sain.method} {same}"
    fig = comparison_image([roundtrip_captions(r)], title)
    keys = ("thumbnail", "restored", "bicubic", "comparison")
    with atomic_paths([outs[k] for k in keys]) as tmps:  # the four files: all or none
        tmp = dict(zip(keys, tmps, strict=True))
        profile = save_args(Metadata(icc=meta.icc), "PNG")  # the values are in the photo's colour space
        _write_new(tmp["thumbnail"], r.thumbnail)
        write_image(tmp["restored"], r.sain.image, format="png", **save_args(meta, "PNG"))
        write_image(tmp["bicubic"], r.bicubic.image, format="png", **profile)
        write_image(tmp["comparison"], fig, format="png", **profile)
    return r, outs


def _write_new(path: Path, data: bytes) -> None:
    with open(path, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
