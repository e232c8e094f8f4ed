"""Encode photos into thumbnails and decode them back (the ``sain encode`` / ``sain decode`` work).

    photo ─read_image─> HR ─reflect-pad to a multiple of s─> model.downscale ─8 bits─> LR
    LR ─JPEG/WebP/AVIF + metadata (model, scale, original size)─> thumbnail file

    thumbnail ─decode─> LR ─model.upscale (seeded GMM latent)─> HR ─crop to the original size─> PNG

The metadata is :class:`sain.thumbnail.ThumbnailInfo`; the network runs as a
:class:`sain.pipeline.ModelMethod`, so photos of more than
:data:`sain.pipeline.AUTO_TILE_PIXELS` LR pixels are processed in overlapping tiles
(:mod:`sain.tiling`), with the same result as untiled processing up to float rounding.
Errors on bad input are ``ValueError`` (``ImageReadError``, ``CheckpointError``) or
``OSError`` with a one-line message naming the file.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from .codecs import CODECS, check_quality, encode
from .codecs import check_format as codecs_check_format
from .fileio import check_target, into_folder, same_file, write_bytes_atomic  # noqa: F401 - re-exported
from .imaging import DEFAULT_MAX_PIXELS, ImageReadError, check_pixels, read_image, to_uint8, write_image
from .imaging.photo import exif_block, kept_exif, read_photo
from .models import RescalingModel
from .pipeline import AUTO_TILE_PIXELS, DEFAULT_TILE, ModelMethod, Tile
from .thumbnail import PathLike, ThumbnailInfo, info_from_bytes, read_bytes
from .zoo import DEFAULT_MODEL, ZOO, get_model, model_name

__all__ = [
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
]

#: Formats a thumbnail can be written in (when the installed Pillow supports them): the lossy codecs.
ENCODE_FORMATS: tuple[str, ...] = tuple(c.name for c in CODECS.values() if c.lossy)
#: File suffix per format.
SUFFIXES = {name: CODECS[name].suffix for name in ENCODE_FORMATS}


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
    return (hr if hr.dim() == 4 else hr[None]).float()


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


def encode_lr(
    lr_u8: np.ndarray,
    fmt: str,
    quality: int,
    info: ThumbnailInfo | None = None,
    keep_exif: Mapping[int, Mapping[int, Any]] | None = None,
) -> bytes:
    """An 8-bit LR (H, W, 3) as a file of ``fmt``; with ``info``, a thumbnail (metadata
    embedded, with the photo's kept EXIF tags ``keep_exif``, see :mod:`sain.imaging.photo`)."""
    return encode(lr_u8, fmt, quality, exif=None if info is None else info.exif(keep_exif))


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
    keep_exif: Mapping[int, Mapping[int, Any]] | None = None,
) -> tuple[bytes, ThumbnailInfo]:
    """Downscale a photo with the model and compress the LR as a standard image file.

    Sides that are not multiples of the scale are reflect-padded; the original size goes
    into the metadata so :func:`decode_image` restores it exactly.

    Args:
        hr: (3, H, W) or (1, 3, H, W) RGB float in [0, 1].
        model: zoo name, weight-file path or model (default ``sain-x2-jpeg``).
        fmt: ``"jpeg"``, ``"webp"`` or ``"avif"``.
        quality: codec quality 1..100.
        tile: ``"auto"`` (tiles above :data:`~sain.pipeline.AUTO_TILE_PIXELS` LR pixels), ``"off"``,
            ``"on"`` or a tile core in LR pixels.
        precision: ``auto`` (default: the thumbnail in fp32, the restoring pass in bf16 where
            the device computes it fast), ``fp32``, ``bf16`` or ``fp16`` (:mod:`sain.precision`).
        device: where the network runs (``"cpu"``, ``"cuda"``, ...; default: the CPU).
        gray: record the photo as grayscale (``"gray": true``, restored as grayscale);
            default: when its three channels are equal.
        keep_exif: EXIF tags to carry into the thumbnail, ``{IFD: {tag: value}}``
            (:func:`sain.imaging.photo.kept_exif`; default none).

    Returns:
        ``(file bytes, ThumbnailInfo)``; the LR is ``ceil(H/s) x ceil(W/s)``.
    """
    fmt, quality = check_format(fmt), check_quality(quality)
    m = get_model(model)
    hr4 = as_hr4(hr)
    h, w = hr4.shape[-2:]
    lr = ModelMethod(m, tile, precision, device).downscale(pad_to_multiple(hr4, m.scale))
    g = is_gray(hr4) if gray is None else bool(gray)
    info = ThumbnailInfo(model=model_name(m), scale=m.scale, width=int(w), height=int(h), gray=g)
    return encode_lr(to_uint8(lr[0]), fmt, quality, info, keep_exif), info


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
        background: colour that transparency is composited onto (with a note).
        frame: the frame of an animated file (required for one).
        model, quality, tile, precision, device: as :func:`encode_image`.

    The photo is read by :func:`sain.imaging.photo.read_photo`: colour profiles are
    converted to sRGB, the camera and date EXIF tags are kept in the thumbnail (GPS and
    the rest dropped), grayscale is recorded. ``EncodeResult.notes`` says what was done.
    """
    src = Path(src)
    if fmt is None and (Path(dst).is_dir() or os.fspath(dst).endswith(("/", os.sep))):
        fmt = "jpeg"
    fmt = check_format(fmt if fmt is not None else Path(dst).suffix.lstrip(".") or "jpeg")
    dst = into_folder(dst, src, SUFFIXES[fmt])
    check_target(dst, force, src)
    t0 = time.perf_counter()
    ph = read_photo(src, max_pixels, background, frame)
    data, info = encode_image(ph.image, model, fmt, quality, tile, precision, device, ph.gray, ph.exif)
    write_bytes_atomic(dst, data)
    s = info.scale
    return EncodeResult(
        src, dst, info, (-(-info.width // s), -(-info.height // s)), len(data), time.perf_counter() - t0, ph.notes
    )


# -- decode -------------------------------------------------------------------------------


def parse_size(text: str) -> tuple[int, int]:
    """``"768x512"`` -> ``(768, 512)`` (width, height)."""
    try:
        w, h = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise ValueError(f"size must look like WIDTHxHEIGHT (e.g. 768x512), got {text!r}") from None
    if w < 1 or h < 1:
        raise ValueError(f"size must be positive, got {text!r}")
    return w, h


def _resolve_decoder(info: ThumbnailInfo | None, model: Any, scale: int | None, name: str) -> RescalingModel:
    if model is not None:
        m = get_model(model)
    elif info is not None:
        # A thumbnail is untrusted input: its metadata may name a zoo model, never a file.
        if info.model not in ZOO:
            raise ValueError(
                f"{name} was made with model {info.model!r}, which is not a zoo model "
                f"(known: {', '.join(ZOO)}); a thumbnail never chooses a file to load: "
                "pass the weights with --model"
            )
        m = get_model(info.model)
    elif scale is not None:
        m = get_model(DEFAULT_MODEL)
    else:
        raise ValueError(
            f"{name} has no sain metadata (not made by 'sain encode'?); "
            "pass --model and --scale (or --size) to decode it anyway"
        )
    if scale is not None and scale != m.scale:
        raise ValueError(f"model {model_name(m)!r} is x{m.scale}, but scale {scale} was asked for")
    if info is not None and info.scale != m.scale:
        raise ValueError(f"{name} was encoded at x{info.scale}, but model {model_name(m)!r} is x{m.scale}")
    return m


def _decode(
    data: bytes,
    name: str,
    model: Any,
    seed: int | None,
    scale: int | None,
    size: tuple[int, int] | str | None,
    tile: Tile,
    precision: str = "auto",
    device: str | None = None,
    max_pixels: int | None = None,
    quality_hint: int | None = None,
) -> tuple[Tensor, RescalingModel, tuple[int, int]]:
    info = info_from_bytes(data, name)
    m = _resolve_decoder(info, model, scale, name)
    try:
        lr = read_image(io.BytesIO(data), max_pixels)  # type: ignore[arg-type]  # Pillow reads file objects too
    except ImageReadError as e:
        detail = str(e).split(": ", 1)[-1]
        raise ImageReadError(f"cannot read image '{name}': {detail}") from None
    s, (h, w) = m.scale, lr.shape[-2:]
    if size is not None:
        W, H = parse_size(size) if isinstance(size, str) else (int(size[0]), int(size[1]))
    elif info is not None:
        W, H = info.width, info.height
    else:
        W, H = w * s, h * s
    if -(-W // s) != w or -(-H // s) != h:
        raise ValueError(
            f"{name}: a {w}x{h} thumbnail at x{s} cannot restore a {W}x{H} image "
            f"(it restores {(w - 1) * s + 1}..{w * s} x {(h - 1) * s + 1}..{h * s})"
        )
    try:
        check_pixels(W, H, max_pixels, name)  # the restored size, before any model work
    except ImageReadError as e:
        msg = str(e).replace("cannot read image", "cannot restore", 1).replace(" is ", " would be ", 1)
        raise ImageReadError(msg) from None
    quality = received_quality(data, quality_hint) if m.quality_aware else None
    hr = ModelMethod(m, tile, precision, device).upscale(lr[None], seed, quality=quality)[0, :, :H, :W]
    if info is not None and info.gray:  # grayscale in, grayscale out: the channels' mean, 8 bits
        hr = torch.round(hr.clamp(0, 1).mean(dim=0, keepdim=True) * 255).div(255).expand(3, -1, -1)
    return hr, m, (int(w), int(h))


def _recorded_gray(data: bytes) -> bool:
    info = info_from_bytes(data, "<bytes>")
    return info is not None and info.gray


def _thumbnail_exif(data: bytes) -> dict[int, dict[int, Any]]:
    """The kept camera/date EXIF tags of a thumbnail (never its sain metadata)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return kept_exif(img.getexif())
    except (OSError, ValueError, SyntaxError, EOFError):
        return {}


def received_quality(data: bytes, hint: int | None = None) -> int | None:
    """The codec quality a quality-aware model restores at: ``hint`` if given, else the
    libjpeg quality read from a JPEG's quantisation tables (exact for libjpeg's standard
    tables, the nearest otherwise), else ``None`` (the model's default)."""
    if hint is not None:
        return check_quality(hint)
    from .codecs.jpeg_quality import estimate_jpeg_quality

    try:
        return estimate_jpeg_quality(data).quality
    except ValueError:  # not a JPEG (WebP, AVIF): no tables to read
        return None


def decode_image(
    data_or_path: bytes | PathLike,
    model: str | PathLike | RescalingModel | None = None,
    seed: int | None = 0,
    scale: int | None = None,
    size: tuple[int, int] | str | None = None,
    tile: Tile = "auto",
    precision: str = "auto",
    device: str | None = None,
    quality_hint: int | None = None,
) -> Tensor:
    """Restore the full-resolution photo from a thumbnail.

    Args:
        data_or_path: the thumbnail file or its bytes.
        model: overrides the model named in the metadata; required (or ``scale``, which
            then uses ``sain-x2-jpeg``) for an image without sain metadata, and for a
            thumbnail made with a weight file (the metadata is untrusted: only a zoo name
            in it is honoured, never a path).
        seed: seed of the latent sample (``None``: unseeded).
        scale: the expected scale; an error if the model's differs.
        size: ``(width, height)`` or ``"WxH"`` of the original; default from the
            metadata, else the LR size times the scale.
        tile, precision, device: as :func:`encode_image`.
        quality_hint: the codec quality for a quality-aware model (default: read from the
            file, :func:`received_quality`).

    Returns:
        (3, H, W) RGB float in [0, 1], rounded to 8 bits.
    """
    data, name = read_bytes(data_or_path)
    return _decode(data, name, model, seed, scale, size, tile, precision, device, quality_hint=quality_hint)[0]


@dataclass
class DecodeResult:
    """What :func:`decode_file` did."""

    src: Path
    dst: Path
    model: str
    lr_size: tuple[int, int]
    size: tuple[int, int]
    seconds: float

    def summary(self) -> str:
        return (
            f"{self.src} -> {self.dst}  {self.lr_size[0]}x{self.lr_size[1]} -> "
            f"{self.size[0]}x{self.size[1]}  model {self.model}  {self.seconds:.2f} s"
        )


def decode_file(
    src: PathLike,
    dst: PathLike,
    model: str | PathLike | RescalingModel | None = None,
    seed: int | None = 0,
    scale: int | None = None,
    size: tuple[int, int] | str | None = None,
    force: bool = False,
    tile: Tile = "auto",
    precision: str = "auto",
    device: str | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    quality_hint: int | None = None,
) -> DecodeResult:
    """Restore a thumbnail file into a PNG (written atomically); arguments as :func:`decode_image`.

    ``dst`` is the PNG, or a folder to write ``<stem>.png`` into (an existing one, or a
    path ending in ``/``, created).

    ``max_pixels`` limits the restored photo's pixels (and the thumbnail's), checked from
    the header and the metadata before any model work (``None``: no limit but Pillow's).
    """
    src = Path(src)
    dst = into_folder(dst, src, "png")
    check_target(dst, force, src)
    t0 = time.perf_counter()
    data, name = read_bytes(src)
    hr, m, lr_size = _decode(data, name, model, seed, scale, size, tile, precision, device, max_pixels, quality_hint)
    u8 = to_uint8(hr)
    gray = bool((u8[..., 0] == u8[..., 1]).all() and (u8[..., 1] == u8[..., 2]).all()) and _recorded_gray(data)
    img = Image.fromarray(np.ascontiguousarray(u8[..., 0]), "L") if gray else Image.fromarray(u8, "RGB")
    keep = _thumbnail_exif(data)
    extra: dict[str, Any] = {"exif": exif_block(keep)} if keep else {}
    write_image(dst, img, format="png", **extra)
    return DecodeResult(src, dst, model_name(m), lr_size, (hr.shape[-1], hr.shape[-2]), time.perf_counter() - t0)
