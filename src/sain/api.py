"""Python API of the ``sain`` tool: photos to compressed thumbnails and back.

    photo ─read_image─> HR ─reflect-pad to a multiple of s─> model.downscale ─8 bits─> LR
    LR ─JPEG/WebP/AVIF + metadata (model, scale, original size)─> thumbnail file

    thumbnail ─decode─> LR ─model.upscale (seeded GMM latent)─> HR ─crop to the original size─> PNG

The thumbnail is an ordinary JPEG / WebP / AVIF file that any viewer opens. What the
decoder needs is stored in the file's EXIF ImageDescription tag (0x010E), the same
mechanism for all three formats::

    sain:v1 {"height": 512, "model": "sain-x2-jpeg", "scale": 2, "width": 768}

Photos of more than :data:`AUTO_TILE_PIXELS` LR pixels are processed in overlapping tiles
(:mod:`sain.tiling`), with the same result as untiled processing up to float rounding.

Quick start::

    >>> from sain import api                                     # doctest: +SKIP
    >>> api.encode_file("photo.png", "thumbs/photo.jpg", quality=75)
    >>> api.decode_file("thumbs/photo.jpg", "restored/photo.png")
    >>> hr = api.decode_image("thumbs/photo.jpg")                 # (3, H, W) in [0, 1]

Errors on bad input are ``ValueError`` (``ImageReadError``, ``CheckpointError``) or
``OSError`` with a one-line message naming the file.
"""
from __future__ import annotations

import io
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from .checkpoint import CheckpointError
from .codecs import CODECS, check_quality, decode, encode
from .codecs import check_format as codecs_check_format
from .fileio import write_bytes_atomic
from .imaging import ImageReadError, list_images, read_image, to_uint8, write_image
from .metrics import psnr, rgb_to_y, ssim
from .models import RescalingModel
from .pipeline import downscale, quantize_u8, upscale
from .tiling import tiled_downscale, tiled_upscale
from .zoo import DEFAULT_MODEL, ZOO, get_model, model_name

__all__ = [
    "AUTO_TILE_PIXELS",
    "DEFAULT_TILE",
    "ENCODE_FORMATS",
    "SAMPLE_IMAGE",
    "SUFFIXES",
    "DecodeResult",
    "EncodeResult",
    "Failure",
    "Restored",
    "RoundtripResult",
    "ThumbnailInfo",
    "check_format",
    "comparison_image",
    "decode_file",
    "decode_image",
    "detail_window",
    "encode_file",
    "encode_image",
    "expand_inputs",
    "get_model",
    "match_quality",
    "model_name",
    "pad_to_multiple",
    "parse_size",
    "plan_outputs",
    "process_files",
    "read_info",
    "roundtrip_captions",
    "roundtrip_file",
    "roundtrip_image",
    "roundtrip_outputs",
]

#: Formats a thumbnail can be written in (when the installed Pillow supports them): the lossy codecs.
ENCODE_FORMATS: tuple[str, ...] = tuple(c.name for c in CODECS.values() if c.lossy)
#: File suffix per format.
SUFFIXES = {name: CODECS[name].suffix for name in ENCODE_FORMATS}
#: With ``tile="auto"``, images with more LR pixels than this are processed in tiles.
AUTO_TILE_PIXELS = 1 << 20
#: Core of a tile, in LR pixels, when tiling (the context margin is added around it).
DEFAULT_TILE = 512
#: The photo ``sain demo`` uses: kodim23 of the Kodak suite (768 x 512).
SAMPLE_IMAGE = Path(str(resources.files("sain") / "data" / "sample.png"))

_META_TAG = 0x010E  # EXIF ImageDescription
_META_PREFIX = "sain:v1 "

PathLike = str | os.PathLike
Tile = int | str | None


# -- metadata -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ThumbnailInfo:
    """What a thumbnail's metadata records: the model, its scale and the original size."""

    model: str
    scale: int
    width: int
    height: int

    def to_text(self) -> str:
        body = json.dumps({"model": self.model, "scale": self.scale, "width": self.width,
                           "height": self.height}, sort_keys=True, separators=(", ", ": "))
        return _META_PREFIX + body

    @classmethod
    def from_text(cls, text: Any) -> ThumbnailInfo | None:
        """Parse an ImageDescription; ``None`` when it is not sain metadata.

        Raises:
            ValueError: the text claims to be sain metadata but is malformed.
        """
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        if not isinstance(text, str) or not text.startswith(_META_PREFIX):
            return None
        try:
            d = json.loads(text[len(_META_PREFIX):])
            info = cls(model=str(d["model"]), scale=int(d["scale"]), width=int(d["width"]),
                       height=int(d["height"]))
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"corrupt sain metadata: {text[:80]!r}") from None
        if info.scale not in (2, 4, 8) or info.width < 1 or info.height < 1:
            raise ValueError(f"corrupt sain metadata: {text[:80]!r}")
        return info

    def exif(self) -> Image.Exif:
        exif = Image.Exif()
        exif[_META_TAG] = self.to_text()
        return exif


def _read_bytes(data_or_path: bytes | PathLike) -> tuple[bytes, str]:
    if isinstance(data_or_path, bytes | bytearray | memoryview):
        return bytes(data_or_path), "<bytes>"
    p = Path(data_or_path)
    try:
        return p.read_bytes(), str(p)
    except OSError as e:
        raise OSError(f"cannot read '{p}': {e.strerror or e}") from None


def read_info(data_or_path: bytes | PathLike) -> ThumbnailInfo | None:
    """The sain metadata of a thumbnail (``None`` for an image without it).

    Raises:
        ValueError: not an image, or corrupt sain metadata. OSError: unreadable file.
    """
    data, name = _read_bytes(data_or_path)
    return _info_from_bytes(data, name)


def _info_from_bytes(data: bytes, name: str) -> ThumbnailInfo | None:
    try:
        with Image.open(io.BytesIO(data)) as img:
            text = img.getexif().get(_META_TAG)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
        raise ValueError(f"cannot read image '{name}': {' '.join(str(e).split()) or type(e).__name__}") from None
    try:
        return ThumbnailInfo.from_text(text)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None


# -- models -------------------------------------------------------------------------------

def check_format(fmt: str) -> str:
    """``fmt`` normalised (``"jpg"`` -> ``"jpeg"``); ValueError if unknown or unavailable."""
    return codecs_check_format(fmt, ENCODE_FORMATS)


def _tile_core(tile: Tile, lr_pixels: int) -> int | None:
    """Tile core in LR pixels, or None for untiled processing."""
    if tile is None or tile is False or tile == "off" or tile == 0:
        return None
    if tile == "auto":
        return DEFAULT_TILE if lr_pixels > AUTO_TILE_PIXELS else None
    if tile is True or tile == "on":
        return DEFAULT_TILE
    if isinstance(tile, int | np.integer) and tile > 0:
        return int(tile)
    raise ValueError(f"tile must be 'auto', 'off', 'on' or a positive number of LR pixels, got {tile!r}")


def _hr4(hr: Tensor) -> Tensor:
    if not isinstance(hr, Tensor) or not hr.is_floating_point() or hr.dim() not in (3, 4) \
            or hr.shape[-3] != 3 or (hr.dim() == 4 and hr.shape[0] != 1):
        raise ValueError("expected an RGB float image (3, H, W) or (1, 3, H, W) in [0, 1], got "
                         f"{getattr(hr, 'dtype', type(hr).__name__)} {tuple(getattr(hr, 'shape', ()))}")
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


def _downscale(model: RescalingModel, hr4: Tensor, tile: Tile) -> Tensor:
    s = model.scale
    core = _tile_core(tile, hr4.shape[-2] * hr4.shape[-1] // (s * s))
    if core is None:
        return downscale(model, hr4)
    return quantize_u8(tiled_downscale(model, hr4, tile=core * s))


def _upscale(model: RescalingModel, lr4: Tensor, seed: int | None, tile: Tile) -> Tensor:
    core = _tile_core(tile, lr4.shape[-2] * lr4.shape[-1])
    if core is None:
        return upscale(model, lr4, model.scale, seed)
    return quantize_u8(tiled_upscale(model, lr4, tile=core, seed=seed))


def _encode_u8(lr_u8: np.ndarray, fmt: str, quality: int, info: ThumbnailInfo | None) -> bytes:
    return encode(lr_u8, fmt, quality, exif=None if info is None else info.exif())


def _write_bytes(path: Path, data: bytes) -> Path:
    """Write atomically (temporary file in the same folder, then rename)."""
    return write_bytes_atomic(path, data)


def _check_target(dst: Path, force: bool) -> None:
    if dst.exists() and not force:
        raise FileExistsError(f"{dst} exists (use --force to overwrite)")
    if dst.exists() and dst.is_dir():
        raise IsADirectoryError(f"{dst} is a directory")


# -- encode -------------------------------------------------------------------------------

def encode_image(hr: Tensor, model: str | PathLike | RescalingModel | None = DEFAULT_MODEL,
                 fmt: str = "jpeg", quality: int = 75, tile: Tile = "auto") -> tuple[bytes, ThumbnailInfo]:
    """Downscale a photo with the model and compress the LR as a standard image file.

    Sides that are not multiples of the scale are reflect-padded; the original size goes
    into the metadata so :func:`decode_image` restores it exactly.

    Args:
        hr: (3, H, W) or (1, 3, H, W) RGB float in [0, 1].
        model: zoo name, weight-file path or model (default ``sain-x2-jpeg``).
        fmt: ``"jpeg"``, ``"webp"`` or ``"avif"``.
        quality: codec quality 1..100.
        tile: ``"auto"`` (tiles above :data:`AUTO_TILE_PIXELS` LR pixels), ``"off"``,
            ``"on"`` or a tile core in LR pixels.

    Returns:
        ``(file bytes, ThumbnailInfo)``; the LR is ``ceil(H/s) x ceil(W/s)``.
    """
    fmt, quality = check_format(fmt), check_quality(quality)
    m = get_model(model)
    hr4 = _hr4(hr)
    h, w = hr4.shape[-2:]
    lr = _downscale(m, pad_to_multiple(hr4, m.scale), tile)
    info = ThumbnailInfo(model=model_name(m), scale=m.scale, width=int(w), height=int(h))
    return _encode_u8(to_uint8(lr[0]), fmt, quality, info), info


@dataclass
class EncodeResult:
    """What :func:`encode_file` did."""

    src: Path
    dst: Path
    info: ThumbnailInfo
    lr_size: tuple[int, int]   # (width, height) of the thumbnail
    bytes: int
    seconds: float

    @property
    def bpp(self) -> float:
        """Bits per pixel of the original (HR) photo."""
        return 8.0 * self.bytes / (self.info.width * self.info.height)

    def summary(self) -> str:
        i = self.info
        return (f"{self.src} -> {self.dst}  {i.width}x{i.height} -> {self.lr_size[0]}x{self.lr_size[1]}  "
                f"{self.bytes:,} B  {self.bpp:.3f} bpp  {self.seconds:.2f} s")


def encode_file(src: PathLike, dst: PathLike, model: str | PathLike | RescalingModel | None = DEFAULT_MODEL,
                fmt: str | None = None, quality: int = 75, force: bool = False,
                tile: Tile = "auto") -> EncodeResult:
    """Encode a photo file into a thumbnail file (written atomically).

    Args:
        src: any image file :func:`sain.imaging.read_image` reads (always taken as RGB).
        dst: the thumbnail; its folder must exist.
        fmt: format; default from ``dst``'s suffix (``.jpg``, ``.webp``, ``.avif``).
        force: overwrite ``dst`` if it exists (otherwise ``FileExistsError``, before any work).
        model, quality, tile: as :func:`encode_image`.
    """
    src, dst = Path(src), Path(dst)
    fmt = check_format(fmt if fmt is not None else dst.suffix.lstrip(".") or "jpeg")
    _check_target(dst, force)
    t0 = time.perf_counter()
    hr = read_image(src)
    data, info = encode_image(hr, model, fmt, quality, tile)
    _write_bytes(dst, data)
    s = info.scale
    return EncodeResult(src, dst, info, (-(-info.width // s), -(-info.height // s)), len(data),
                        time.perf_counter() - t0)


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
        if info.model not in ZOO and not Path(info.model).is_file():
            raise ValueError(f"{name} was made with model {info.model!r}, which is not a bundled model; "
                             "pass its weights with --model")
        m = get_model(info.model)
    elif scale is not None:
        m = get_model(DEFAULT_MODEL)
    else:
        raise ValueError(f"{name} has no sain metadata (not made by 'sain encode'?); "
                         "pass --model and --scale (or --size) to decode it anyway")
    if scale is not None and scale != m.scale:
        raise ValueError(f"model {model_name(m)!r} is x{m.scale}, but scale {scale} was asked for")
    if info is not None and info.scale != m.scale:
        raise ValueError(f"{name} was encoded at x{info.scale}, but model {model_name(m)!r} is x{m.scale}")
    return m


def _decode(data: bytes, name: str, model: Any, seed: int | None, scale: int | None,
            size: tuple[int, int] | str | None, tile: Tile) -> tuple[Tensor, RescalingModel, tuple[int, int]]:
    info = _info_from_bytes(data, name)
    m = _resolve_decoder(info, model, scale, name)
    try:
        lr = read_image(io.BytesIO(data))
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
        raise ValueError(f"{name}: a {w}x{h} thumbnail at x{s} cannot restore a {W}x{H} image "
                         f"(it restores {(w - 1) * s + 1}..{w * s} x {(h - 1) * s + 1}..{h * s})")
    hr = _upscale(m, lr[None], seed, tile)
    return hr[0, :, :H, :W], m, (int(w), int(h))


def decode_image(data_or_path: bytes | PathLike, model: str | PathLike | RescalingModel | None = None,
                 seed: int | None = 0, scale: int | None = None, size: tuple[int, int] | str | None = None,
                 tile: Tile = "auto") -> Tensor:
    """Restore the full-resolution photo from a thumbnail.

    Args:
        data_or_path: the thumbnail file or its bytes.
        model: overrides the model named in the metadata; required (or ``scale``, which
            then uses ``sain-x2-jpeg``) for an image without sain metadata.
        seed: seed of the latent sample (``None``: unseeded).
        scale: the expected scale; an error if the model's differs.
        size: ``(width, height)`` or ``"WxH"`` of the original; default from the
            metadata, else the LR size times the scale.
        tile: as :func:`encode_image`.

    Returns:
        (3, H, W) RGB float in [0, 1], rounded to 8 bits.
    """
    data, name = _read_bytes(data_or_path)
    return _decode(data, name, model, seed, scale, size, tile)[0]


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
        return (f"{self.src} -> {self.dst}  {self.lr_size[0]}x{self.lr_size[1]} -> "
                f"{self.size[0]}x{self.size[1]}  model {self.model}  {self.seconds:.2f} s")


def decode_file(src: PathLike, dst: PathLike, model: str | PathLike | RescalingModel | None = None,
                seed: int | None = 0, scale: int | None = None, size: tuple[int, int] | str | None = None,
                force: bool = False, tile: Tile = "auto") -> DecodeResult:
    """Restore a thumbnail file into a PNG (written atomically); arguments as :func:`decode_image`."""
    src, dst = Path(src), Path(dst)
    _check_target(dst, force)
    t0 = time.perf_counter()
    data, name = _read_bytes(src)
    hr, m, lr_size = _decode(data, name, model, seed, scale, size, tile)
    write_image(dst, hr, format="png")
    return DecodeResult(src, dst, model_name(m), lr_size, (hr.shape[-1], hr.shape[-2]), time.perf_counter() - t0)


# -- round trip against bicubic -------------------------------------------------------------

def match_quality(lr_u8: np.ndarray, fmt: str, target_bytes: int) -> tuple[int, bytes]:
    """The quality whose file is closest to ``target_bytes`` without exceeding it.

    Bisection over 1..100 (file size grows with quality, up to small wobbles); when even
    quality 1 is larger than the target, quality 1.

    Returns:
        ``(quality, file bytes)``.
    """
    cache: dict[int, bytes] = {}

    def at(q: int) -> bytes:
        if q not in cache:
            cache[q] = encode(lr_u8, fmt, q)
        return cache[q]

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


@dataclass
class Restored:
    """One restored image of a round trip and its scores against the original."""

    method: str           # "bicubic" or the model name
    quality: int
    bytes: int            # compressed LR bytes (no metadata)
    image: Tensor         # (3, H, W) in [0, 1]
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
    thumbnail: bytes = b""        # the SAIN thumbnail file (with metadata)
    bicubic_lr: bytes = b""       # the bicubic LR file at the matched quality

    def table(self) -> str:
        h, w = self.original.shape[-2:]
        lines = [f"{'method':<14}{'quality':>8}{'LR bytes':>11}{'bpp':>8}{'PSNR-Y':>9}{'SSIM-Y':>9}"]
        for r in (self.bicubic, self.sain):
            lines.append(f"{r.method[:13]:<14}{r.quality:>8}{r.bytes:>11,}{8 * r.bytes / (h * w):>8.3f}"
                         f"{_fmt(r.psnr_y, '.2f'):>9}{_fmt(r.ssim_y, '.4f'):>9}")
        return "\n".join(lines)


def _fmt(v: float, spec: str) -> str:
    return "-" if v is None or not math.isfinite(v) else format(v, spec)


def _scores(restored: Tensor, original: Tensor, crop: int) -> tuple[float, float]:
    out = []
    for fn in (psnr, ssim):
        try:
            out.append(fn(restored, original, crop_border=crop, y_channel=True))
        except ValueError:  # too small for the crop or the SSIM window
            out.append(float("nan"))
    return out[0], out[1]


def roundtrip_image(hr: Tensor, model: str | PathLike | RescalingModel | None = DEFAULT_MODEL,
                    fmt: str = "jpeg", qualities: int | Sequence[int] = 75, seed: int | None = 0,
                    tile: Tile = "auto", progress: bool = False) -> RoundtripResult | list[RoundtripResult]:
    """Encode, decode and compare with bicubic at the same bytes.

    For each quality: the SAIN LR is compressed at that quality; the bicubic LR (MATLAB
    bicubic, 8 bits) is compressed at the quality whose file is the largest not above the
    SAIN LR's bytes (:func:`match_quality`) and restored with MATLAB bicubic. Both are
    scored against the original with PSNR-Y / SSIM-Y, ``scale`` pixels cropped per border.
    The downscales are computed once for all qualities.

    Args:
        hr: (3, H, W) RGB float in [0, 1].
        qualities: one quality (returns one result) or several (returns a list).
        model, fmt, seed, tile: as :func:`encode_image` / :func:`decode_image`.
        progress: show a tqdm bar on stderr (the downscale, then one step per quality).
    """
    from tqdm import tqdm

    fmt = check_format(fmt)
    single = isinstance(qualities, int | np.integer)
    qs = [check_quality(q) for q in ([qualities] if single else qualities)]
    m = get_model(model)
    s = m.scale
    hr4 = _hr4(hr)
    h, w = hr4.shape[-2:]
    original = quantize_u8(hr4[0])
    padded = pad_to_multiple(hr4, s)
    info = ThumbnailInfo(model=model_name(m), scale=s, width=int(w), height=int(h))
    bar = tqdm(total=len(qs) + 1, desc="downscale", file=sys.stderr, disable=not progress, leave=False)
    lr_sain = to_uint8(_downscale(m, padded, tile)[0])
    lr_bic = to_uint8(downscale(None, padded, s)[0])
    bar.update(1)
    results = []
    for q in qs:
        bar.set_description(f"quality {q}")
        thumb = _encode_u8(lr_sain, fmt, q, info)
        payload = len(encode(lr_sain, fmt, q))
        sain_hr = decode_image(thumb, m, seed, tile=tile)
        bq, bdata = match_quality(lr_bic, fmt, payload)
        received = torch.from_numpy(decode(bdata)).permute(2, 0, 1).float()[None] / 255
        bic_hr = upscale(None, received, s)[0, :, :h, :w]
        results.append(RoundtripResult(
            original=original, scale=s, fmt=fmt, quality=q,
            sain=Restored(model_name(m), q, payload, sain_hr, *_scores(sain_hr, original, s)),
            bicubic=Restored("bicubic", bq, len(bdata), bic_hr, *_scores(bic_hr, original, s)),
            thumbnail=thumb, bicubic_lr=bdata))
        bar.update(1)
    bar.close()
    return results[0] if single else results


# -- comparison figure --------------------------------------------------------------------

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


def comparison_image(rows: Sequence[Sequence[tuple[Tensor, str]]], title: str = "",
                     window: tuple[int, int, int, int] | None = None) -> Image.Image:
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
    canvas = Image.new("RGB", (pad + ncol * (pw + pad), title_h + pad + len(rows) * (ph + cap_h + pad)),
                       (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((pad, 8), title, fill=(0, 0, 0), font=tfont)
    for r, row in enumerate(rows):
        y = title_h + pad + r * (ph + cap_h + pad)
        for c, (img, caption) in enumerate(row):
            x = pad + c * (pw + pad)
            crop = Image.fromarray(to_uint8(img[:, top:top + ch, left:left + cw]))
            canvas.paste(crop.resize((pw, ph), Image.Resampling.NEAREST), (x, y))
            draw.text((x + 2, y + ph + 4), caption, fill=(0, 0, 0), font=font)
    return canvas


def roundtrip_captions(r: RoundtripResult) -> list[tuple[Tensor, str]]:
    """The (image, caption) triple original / bicubic / SAIN of one round trip."""
    f = r.fmt.upper()
    return [(r.original, "original"),
            (r.bicubic.image, f"bicubic  {f} q{r.bicubic.quality}  {r.bicubic.bytes:,} B  "
                              f"{_fmt(r.bicubic.psnr_y, '.2f')} dB"),
            (r.sain.image, f"{r.sain.method} x{r.scale}  {f} q{r.quality}  {r.sain.bytes:,} B  "
                           f"{_fmt(r.sain.psnr_y, '.2f')} dB")]


def roundtrip_outputs(src: PathLike, outdir: PathLike, fmt: str) -> dict[str, Path]:
    """The files :func:`roundtrip_file` writes for ``src`` into ``outdir``."""
    stem, out = Path(src).stem, Path(outdir)
    fmt = check_format(fmt)
    return {"thumbnail": out / f"{stem}.{SUFFIXES[fmt]}", "restored": out / f"{stem}.png",
            "bicubic": out / f"{stem}.bicubic.png", "comparison": out / f"{stem}.compare.png"}


def roundtrip_file(src: PathLike, outdir: PathLike, model: str | PathLike | RescalingModel | None = DEFAULT_MODEL,
                   fmt: str = "jpeg", quality: int = 75, seed: int | None = 0, force: bool = False,
                   tile: Tile = "auto") -> tuple[RoundtripResult, dict[str, Path]]:
    """:func:`roundtrip_image` on a file, writing into ``outdir``: the thumbnail
    ``<stem>.<ext>``, the restored ``<stem>.png``, the bicubic restoration
    ``<stem>.bicubic.png`` and the side-by-side ``<stem>.compare.png``.

    Returns:
        The result and the paths written (keys ``thumbnail``, ``restored``, ``bicubic``,
        ``comparison``).
    """
    src = Path(src)
    outs = roundtrip_outputs(src, outdir, fmt)
    for p in outs.values():
        _check_target(p, force)
    hr = read_image(src)
    r = roundtrip_image(hr, model, fmt, quality, seed, tile)
    assert isinstance(r, RoundtripResult)
    h, w = hr.shape[-2:]
    title = f"{src.name}  {w}x{h}  x{r.scale}  {r.fmt.upper()}: bicubic vs {r.sain.method} at the same bytes"
    fig = comparison_image([roundtrip_captions(r)], title)
    _write_bytes(outs["thumbnail"], r.thumbnail)
    write_image(outs["restored"], r.sain.image, format="png")
    write_image(outs["bicubic"], r.bicubic.image, format="png")
    write_image(outs["comparison"], fig, format="png")
    return r, outs


# -- many files ---------------------------------------------------------------------------

@dataclass
class Failure:
    """An input that could not be processed, with a one-line reason."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return self.reason if str(self.path) in self.reason else f"{self.path}: {self.reason}"


def _one_line(e: BaseException) -> str:
    text = str(e).strip()
    if isinstance(e, OSError) and e.strerror and e.filename:
        text = f"{e.strerror}: {e.filename}"
    return text.splitlines()[0] if text else type(e).__name__


def expand_inputs(paths: Iterable[PathLike]) -> list[Path]:
    """Files as given, folders replaced by the images inside them (recursively, sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        out.extend(list_images(p) if p.is_dir() else [p])
    return out


def plan_outputs(inputs: Sequence[Path], outdir: PathLike, suffix: str,
                 force: bool) -> tuple[list[tuple[Path, Path]], list[Failure]]:
    """Pair inputs with ``outdir/<stem>.<suffix>``; refuse existing files (unless ``force``)
    and two inputs with the same output, before any work is done."""
    outdir = Path(outdir)
    jobs, failures, seen = [], [], {}
    for src in inputs:
        dst = outdir / f"{src.stem}.{suffix}"
        if dst in seen:
            failures.append(Failure(src, f"same output name {dst} as {seen[dst]}"))
        elif dst.exists() and not force:
            failures.append(Failure(src, f"{dst} exists (use --force to overwrite)"))
        else:
            seen[dst] = src
            jobs.append((src, dst))
    return jobs, failures


def process_files(jobs: Sequence[tuple[Path, Any]], work: Callable[[Path, Any], Any], *,
                  progress: bool = False, desc: str = "", report: Callable[[Any], None] | None = None
                  ) -> list[Failure]:
    """Run ``work(src, dst)`` for every job; an input that fails does not stop the others.

    Args:
        progress: show a tqdm bar on stderr.
        report: called with each result (e.g. to print a line), bar-safe.

    Returns:
        The failures (``ValueError``, ``OSError``, ``RuntimeError`` or ``MemoryError``,
        each reduced to one line), in input order.
    """
    from tqdm import tqdm

    failures = []
    with tqdm(total=len(jobs), desc=desc, unit="img", file=sys.stderr, disable=not progress,
              leave=False, dynamic_ncols=True) as bar:
        for src, dst in jobs:
            bar.set_postfix_str(Path(src).name, refresh=False)
            try:
                result = work(src, dst)
            except (ValueError, OSError, RuntimeError, MemoryError, CheckpointError) as e:
                failures.append(Failure(Path(src), _one_line(e)))
            else:
                if report is not None:
                    with bar.external_write_mode(file=sys.stdout):
                        report(result)
            bar.update(1)
    return failures
