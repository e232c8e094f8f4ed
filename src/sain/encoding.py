"""Encode photos into thumbnails (the ``sain encode`` work); decoding is :mod:`sain.decoding`.

    photo ─read_photo─> HR (+ alpha, tags) ─reflect-pad to a multiple of s─> model.downscale ─8 bits─> LR
    LR (+ alpha, MATLAB bicubic / s) ─JPEG/WebP/AVIF + metadata (model, scale, original size, quality)─> thumbnail

    thumbnail ─decode─> LR ─model.upscale (seeded GMM latent)─> HR ─crop to the original size─> PNG

The metadata is :class:`sain.thumbnail.ThumbnailInfo`; the network runs as a
:class:`sain.pipeline.ModelMethod`, so photos of more than
:data:`sain.pipeline.AUTO_TILE_PIXELS` LR pixels are processed in overlapping tiles
(:mod:`sain.tiling`), with the same result as untiled processing up to float rounding.
What a thumbnail is tagged with (ICC profile, EXIF, XMP) is :mod:`sain.imaging.metadata`.
Errors on bad input are ``ValueError`` (``ImageReadError``, ``CheckpointError``) or
``OSError`` with a one-line message naming the file.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .codecs import CODECS, check_quality
from .codecs import check_format as codecs_check_format
from .decoding import DecodeResult, decode_file, decode_image, parse_size, received_quality  # noqa: F401 - re-exported
from .fileio import check_target, into_folder, same_file, write_bytes_atomic  # noqa: F401 - re-exported
from .imaging import DEFAULT_MAX_PIXELS, bicubic_down, to_uint8
from .imaging.metadata import Metadata, check_icc, encode_tagged, save_args
from .imaging.photo import read_photo
from .models import RescalingModel
from .pipeline import AUTO_TILE_PIXELS, DEFAULT_TILE, ModelMethod, Tile
from .refine import check_refine_format, check_refine_steps, refine_with_progress
from .thumbnail import PathLike, ThumbnailInfo, load_coder, model_id
from .zoo import DEFAULT_MODEL

__all__ = [
    "ALPHA_FORMATS",
    "AUTO_TILE_PIXELS",
    "DEFAULT_TILE",
    "ENCODE_FORMATS",
    "SUFFIXES",
    "DecodeResult",
    "EncodeResult",
    "check_format",
    "decode_file",
    "decode_image",
    "encode_file",
    "encode_image",
    "encode_lr",
    "pad_to_multiple",
    "parse_size",
    "shrink_alpha",
]

#: Formats a thumbnail can be written in (when the installed Pillow supports them): the lossy codecs.
ENCODE_FORMATS: tuple[str, ...] = tuple(c.name for c in CODECS.values() if c.lossy)
#: File suffix per format.
SUFFIXES = {name: CODECS[name].suffix for name in ENCODE_FORMATS}
#: Thumbnail formats that keep a photo's alpha channel (a JPEG thumbnail gets it composited).
ALPHA_FORMATS: tuple[str, ...] = ("webp", "avif")


def check_format(fmt: str) -> str:
    """``fmt`` normalised (``"jpg"`` -> ``"jpeg"``); ValueError if unknown or unavailable."""
    return codecs_check_format(fmt, ENCODE_FORMATS)


def as_hr4(hr: Tensor) -> Tensor:
    """An RGB float image (3, H, W) or (1, 3, H, W) as (1, 3, H, W) float32; ValueError otherwise."""
    if (
        not isinstance(hr, Tensor)
        or not hr.is_floating_point()
        or hr.dim() not in (3, 4)
        or hr.shape[-3] != 3
        or (hr.dim() == 4 and hr.shape[0] != 1)
    ):
        raise ValueError(
            "expected an RGB float image (3, H, W) or (1, 3, H, W) in [0, 1], got "
            f"{getattr(hr, 'dtype', type(hr).__name__)} {tuple(getattr(hr, 'shape', ()))}"
        )
    if not bool(torch.isfinite(hr).all()):
        raise ValueError("the image has NaN or infinite values")
    lo, hi = float(hr.min()), float(hr.max())
    if lo < -_RANGE_SLACK or hi > 1 + _RANGE_SLACK:
        hint = " (8-bit values? divide by 255)" if hi > 2 else ""
        raise ValueError(f"expected values in [0, 1], got {lo:.4g}..{hi:.4g}{hint}")
    return (hr if hr.dim() == 4 else hr[None]).float()


#: How far outside [0, 1] an input may stray (the rounding of a resize or a colour
#: conversion) before it is refused as another scale; what strays is clamped by the codec.
_RANGE_SLACK = 0.01


def pad_to_multiple(hr: Tensor, scale: int) -> Tensor:
    """Reflect-pad (N, 3, H, W) on the right and bottom to multiples of ``scale``.

    Raises:
        ValueError: a side is shorter than the scale.
    """
    h, w = hr.shape[-2:]
    if h < scale or w < scale:
        raise ValueError(f"image is {w}x{h} pixels, smaller than the scale x{scale}")
    ph, pw = (-h) % scale, (-w) % scale
    if ph or pw:
        hr = F.pad(hr, (0, pw, 0, ph), mode="reflect")
    return hr


def shrink_alpha(alpha: Tensor, scale: int) -> np.ndarray:
    """An alpha channel (H, W) in [0, 1] at the LR size: reflect-padded like the photo,
    MATLAB bicubic / ``scale``, 8 bits; ``(ceil(H/s), ceil(W/s))`` uint8."""
    a = pad_to_multiple(alpha.float()[None, None], scale)
    return to_uint8(bicubic_down(a, scale)[0].expand(3, -1, -1))[..., 0]


def _check_alpha_format(fmt: str) -> None:
    if fmt not in ALPHA_FORMATS:
        raise ValueError(
            f"a {fmt.upper()} thumbnail has no alpha channel: composite the photo first, "
            f"or use {' or '.join(ALPHA_FORMATS)}"
        )


def encode_lr(
    lr_u8: np.ndarray,
    fmt: str,
    quality: int,
    info: ThumbnailInfo | None = None,
    metadata: Metadata | None = None,
    alpha: np.ndarray | None = None,
) -> bytes:
    """An 8-bit LR (H, W, 3) as a file of ``fmt``; with ``info``, a thumbnail (metadata
    embedded, ``quality`` recorded in it); tagged with ``metadata`` (ICC profile, EXIF, XMP,
    :mod:`sain.imaging.metadata`); ``alpha`` (H, W) uint8 adds an alpha channel
    (:data:`ALPHA_FORMATS` only). Without ``metadata`` and ``alpha``, the bytes of
    :func:`sain.codecs.encode` with the metadata."""
    fmt, quality = check_format(fmt), check_quality(quality)
    pil_format = CODECS[fmt].pil_format
    if info is not None and info.quality != quality:
        info = dataclasses.replace(info, quality=quality)  # the quality this file is written at
    exif = None if info is None else info.exif(metadata.exif if metadata is not None else None)
    pixels = lr_u8
    if alpha is not None:
        _check_alpha_format(fmt)
        pixels = np.concatenate([lr_u8, alpha[..., None]], axis=2)
    return encode_tagged(pixels, pil_format, quality, save_args(metadata, pil_format, exif))


def is_gray(x: Tensor) -> bool:
    """Whether an RGB image (..., 3, H, W) has three equal channels."""
    return bool(torch.equal(x[..., 0, :, :], x[..., 1, :, :]) and torch.equal(x[..., 1, :, :], x[..., 2, :, :]))


# -- encode -------------------------------------------------------------------------------


def encode_image(
    hr: Tensor,
    model: str | PathLike | RescalingModel | None = DEFAULT_MODEL,
    fmt: str = "jpeg",
    quality: int = 75,
    tile: Tile = "auto",
    precision: str = "auto",
    device: str | None = None,
    gray: bool | None = None,
    metadata: Metadata | None = None,
    alpha: Tensor | None = None,
    refine: int = 0,
    progress: bool = False,
) -> tuple[bytes, ThumbnailInfo]:
    """Downscale a photo with the model and compress the LR as a standard image file.

    Sides that are not multiples of the scale are reflect-padded; the original size goes
    into the metadata so :func:`decode_image` restores it exactly.

    Args:
        hr: (3, H, W) or (1, 3, H, W) RGB float in [0, 1]: the values as stored (they are
            what the network works on, in whatever colour space ``metadata.icc`` names).
        model: zoo name, weight-file path or model (default ``sain-x2-jpeg``); a weight
            file is recorded by its hash, never its path (:func:`sain.thumbnail.model_id`).
        fmt: ``"jpeg"``, ``"webp"`` or ``"avif"``.
        quality: codec quality 1..100.
        tile: ``"auto"`` (tiles above :data:`~sain.pipeline.AUTO_TILE_PIXELS` LR pixels), ``"off"``,
            ``"on"`` or a tile core in LR pixels.
        precision: ``auto`` (default: the thumbnail in fp32, the restoring pass in bf16 on
            CPUs where that is faster, fp16 on GPUs), ``fp32``, ``bf16`` or ``fp16`` (:mod:`sain.precision`).
        device: where the network runs (``"cpu"``, ``"cuda"``, ...; default: the CPU).
        gray: record the photo as grayscale (``"gray": true``, restored as grayscale);
            default: when its three channels are equal.
        metadata: what the thumbnail is tagged with: ICC profile, EXIF, XMP
            (:class:`~sain.imaging.metadata.Metadata`, as :func:`~sain.imaging.photo.read_photo`
            gives; default: nothing but the sain metadata).
        alpha: (H, W) alpha channel in [0, 1], kept in the thumbnail at the LR size
            (:func:`shrink_alpha`); WebP and AVIF only (``ValueError`` for JPEG).
        refine: encoder-side refinement steps of the thumbnail (:mod:`sain.refine`; JPEG
            only; default 0: the network's LR as it is). Slower encode, better restoration.
        progress: a progress bar of the refinement on stderr.

    Returns:
        ``(file bytes, ThumbnailInfo)``, the info as written (``quality`` included); the LR
        is ``ceil(H/s) x ceil(W/s)``.
    """
    fmt, quality = check_format(fmt), check_quality(quality)
    m = load_coder(model)
    hr4 = as_hr4(hr)
    h, w = hr4.shape[-2:]
    if alpha is not None:
        _check_alpha_format(fmt)
        if not isinstance(alpha, Tensor) or tuple(alpha.shape) != (h, w):
            raise ValueError(f"alpha must be an (H, W) = ({h}, {w}) tensor, got {tuple(getattr(alpha, 'shape', ()))}")
    if check_refine_steps(refine):
        check_refine_format(fmt)
    padded = pad_to_multiple(hr4, m.scale)
    lr = ModelMethod(m, tile, precision, device).downscale(padded)
    if refine:
        lr = refine_with_progress(m, padded, lr, refine, precision, progress)
    g = is_gray(hr4) if gray is None else bool(gray)
    info = ThumbnailInfo(model=model_id(m), scale=m.scale, width=int(w), height=int(h), gray=g, quality=quality)
    lr_alpha = None if alpha is None else shrink_alpha(alpha, m.scale)
    return encode_lr(to_uint8(lr[0]), fmt, quality, info, metadata, lr_alpha), info


@dataclass
class EncodeResult:
    """What :func:`encode_file` did."""

    src: Path
    dst: Path
    info: ThumbnailInfo
    lr_size: tuple[int, int]  # (width, height) of the thumbnail
    bytes: int
    seconds: float
    notes: list[str] = field(default_factory=list)  # what was done to the photo (colour profile, alpha)

    @property
    def bpp(self) -> float:
        """Bits per pixel of the original (HR) photo."""
        return 8.0 * self.bytes / (self.info.width * self.info.height)

    def summary(self) -> str:
        i = self.info
        return (
            f"{self.src} -> {self.dst}  {i.width}x{i.height} -> {self.lr_size[0]}x{self.lr_size[1]}  "
            f"{self.bytes:,} B  {self.bpp:.3f} bpp  {self.seconds:.2f} s"
        )


def encode_file(
    src: PathLike,
    dst: PathLike,
    model: str | PathLike | RescalingModel | None = DEFAULT_MODEL,
    fmt: str | None = None,
    quality: int = 75,
    force: bool = False,
    tile: Tile = "auto",
    precision: str = "auto",
    device: str | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    background: tuple[int, int, int] = (255, 255, 255),
    frame: int | None = None,
    icc: str = "keep",
    keep_metadata: bool = False,
    refine: int = 0,
    progress: bool = False,
) -> EncodeResult:
    """Encode a photo file into a thumbnail file (written atomically).

    Args:
        src: any image file :func:`sain.imaging.read_image` reads (always taken as RGB).
        dst: the thumbnail (its folder must exist), or a folder to write ``<stem>.<ext>``
            into: an existing one, or a path ending in ``/`` (created).
        fmt: format; default from ``dst``'s suffix (``.jpg``, ``.webp``, ``.avif``; JPEG
            for a folder).
        force: overwrite ``dst`` if it exists (otherwise ``FileExistsError``, before any work);
            ``dst`` that is ``src`` itself is always refused (``ValueError``).
        max_pixels: refuse photos of more pixels (checked from the header, before decoding;
            ``None``: no limit but Pillow's).
        background: colour that transparency is composited onto in a JPEG thumbnail (with
            a note); WebP and AVIF thumbnails keep the alpha channel.
        frame: the frame of an animated file (required for one).
        icc: ``"keep"`` (default: the stored values, the thumbnail tagged with the photo's
            ICC profile) or ``"convert-srgb"`` (converted to sRGB, untagged).
        keep_metadata: copy the photo's EXIF (less orientation) and XMP into the thumbnail
            (default: stripped, only the sain metadata is written).
        model, quality, tile, precision, device, refine, progress: as :func:`encode_image`.

    The photo is read by :func:`sain.imaging.photo.read_photo`, which also records
    grayscale. ``EncodeResult.notes`` says what was done to it.
    """
    check_icc(icc)
    check_refine_steps(refine)
    src = Path(src)
    if fmt is None and (Path(dst).is_dir() or os.fspath(dst).endswith(("/", os.sep))):
        fmt = "jpeg"
    fmt = check_format(fmt if fmt is not None else Path(dst).suffix.lstrip(".") or "jpeg")
    dst = into_folder(dst, src, SUFFIXES[fmt])
    check_target(dst, force, src)
    t0 = time.perf_counter()
    ph = read_photo(src, max_pixels, background, frame, icc, keep_metadata, keep_alpha=fmt in ALPHA_FORMATS)
    data, info = encode_image(
        ph.image,
        model,
        fmt,
        quality,
        tile,
        precision,
        device,
        ph.gray,
        ph.metadata,
        alpha=ph.alpha,
        refine=refine,
        progress=progress,
    )
    write_bytes_atomic(dst, data)
    s = info.scale
    return EncodeResult(
        src, dst, info, (-(-info.width // s), -(-info.height // s)), len(data), time.perf_counter() - t0, ph.notes
    )
