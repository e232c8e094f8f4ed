"""Restore photos from thumbnails (the ``sain decode`` work; :mod:`sain.encoding` re-exports it).

    thumbnail ─sain:v1 metadata─> model (a zoo name; a weight file only when passed), original size
    thumbnail ─decode─> LR ─model.upscale (seeded GMM latent)─> HR ─crop to the original size─> RGB
    thumbnail ─alpha (WebP / AVIF)─> MATLAB bicubic x s, cropped─> the restored PNG's alpha
    thumbnail ─ICC profile, EXIF (less its sain metadata and orientation), XMP─> the restored PNG's tags

The metadata is untrusted input: it may name a zoo model, never a file to load. A
thumbnail made with a weight file records the file's hash (:func:`sain.thumbnail.model_id`);
decoding it needs that file as ``model``, and a model whose name or hash differs from the
recorded one gets a note (:attr:`DecodeResult.notes`).

A quality-aware model restores at the codec quality the file received
(:func:`choose_quality`)::

    --quality-hint ──────────────────────────────────────────────────────> that quality
    JPEG quantisation tables (exact for libjpeg's, else the nearest) ────> their quality
    else the quality recorded in the sain:v1 metadata (WebP, AVIF) ──────> that quality
    else none (the model's default)

The tables win over the metadata because a second party may have re-compressed the JPEG
after it was written; when the two disagree, a note says so.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

from .codecs import check_quality
from .fileio import check_target, into_folder
from .imaging import DEFAULT_MAX_PIXELS, ImageReadError, bicubic_up, check_pixels, read_image, to_uint8, write_image
from .imaging.io import open_image
from .imaging.metadata import Metadata, file_metadata, save_args
from .models import RescalingModel
from .pipeline import ModelMethod, Tile
from .thumbnail import (
    FILE_MODEL_PREFIX,
    META_PREFIX,
    PathLike,
    ThumbnailInfo,
    info_from_bytes,
    load_coder,
    model_id,
    read_bytes,
)
from .zoo import DEFAULT_MODEL, ZOO, get_model, model_name

__all__ = [
    "LOSSLESS_QUALITY",
    "QUALITY_SOURCES",
    "DecodeResult",
    "QualityChoice",
    "choose_quality",
    "decode_file",
    "decode_image",
    "parse_size",
    "received_quality",
]


def parse_size(text: str) -> tuple[int, int]:
    """``"768x512"`` -> ``(768, 512)`` (width, height)."""
    try:
        w, h = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise ValueError(f"size must look like WIDTHxHEIGHT (e.g. 768x512), got {text!r}") from None
    if w < 1 or h < 1:
        raise ValueError(f"size must be positive, got {text!r}")
    return w, h


def _resolve_decoder(
    info: ThumbnailInfo | None, model: Any, scale: int | None, name: str, notes: list[str]
) -> RescalingModel:
    if model is not None:
        m = load_coder(model)
        if info is not None and info.model != model_id(m):
            notes.append(
                f"{name} was made with model {info.model}, but the model given is {model_id(m)}; "
                "decoding with the model given"
            )
    elif info is not None:
        # A thumbnail is untrusted input: its metadata may name a zoo model, never a file.
        if info.model.startswith(FILE_MODEL_PREFIX):
            raise ValueError(
                f"{name} was made with the weight file {info.model}, not a zoo model; "
                "a thumbnail never chooses a file to load: pass that file with --model FILE"
            )
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


@dataclass
class _Decoded:
    hr: Tensor  # (3, H, W)
    model: RescalingModel
    lr_size: tuple[int, int]
    info: ThumbnailInfo | None
    notes: list[str]


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
) -> _Decoded:
    info = info_from_bytes(data, name)
    notes: list[str] = []
    m = _resolve_decoder(info, model, scale, name, notes)
    try:
        lr = read_image(io.BytesIO(data), max_pixels, single_frame=True)  # type: ignore[arg-type]  # Pillow reads file objects too
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
    quality = None
    if m.quality_aware:
        choice = choose_quality(data, quality_hint, None if info is None else info.quality, name)
        quality = choice.quality
        if choice.note:
            notes.append(choice.note)
    hr = ModelMethod(m, tile, precision, device).upscale(lr[None], seed, quality=quality)[0, :, :H, :W]
    if info is not None and info.gray:  # grayscale in, grayscale out: the channels' mean, 8 bits
        hr = torch.round(hr.clamp(0, 1).mean(dim=0, keepdim=True) * 255).div(255).expand(3, -1, -1)
    return _Decoded(hr, m, (int(w), int(h)), info, notes)


#: Where :func:`choose_quality` found the quality, in order of precedence.
QUALITY_SOURCES = ("hint", "lossless", "tables", "metadata", "none")
#: The quality a lossless thumbnail (PNG) is restored at by a quality-aware model.
LOSSLESS_QUALITY = 100


@dataclass(frozen=True)
class QualityChoice:
    """The codec quality a quality-aware model restores a thumbnail at, and why.

    Attributes:
        quality: 1..100, or ``None`` (the model's default).
        source: one of :data:`QUALITY_SOURCES`: ``hint`` (given by the caller),
            ``lossless`` (a PNG: nothing was lost to a codec, :data:`LOSSLESS_QUALITY`),
            ``tables`` (a JPEG's quantisation tables), ``metadata`` (recorded by
            ``sain encode``), ``none``.
        note: set when the tables and the recorded quality disagree (the file was
            re-compressed after it was written); the tables are used.
    """

    quality: int | None
    source: str
    note: str | None = None


def choose_quality(
    data: bytes, hint: int | None = None, recorded: int | None = None, name: str = "<bytes>"
) -> QualityChoice:
    """Which quality to restore ``data`` (a thumbnail's bytes) at: ``hint`` if given, else
    :data:`LOSSLESS_QUALITY` for a PNG (lossless, whatever its metadata records), else a
    JPEG's quantisation tables (:func:`~sain.codecs.jpeg_quality.estimate_jpeg_quality`),
    else ``recorded`` (the :attr:`~sain.thumbnail.ThumbnailInfo.quality` of its metadata,
    for WebP / AVIF, which have no tables), else none. ``name`` is for the note."""
    if hint is not None:
        return QualityChoice(check_quality(hint), "hint")
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return QualityChoice(LOSSLESS_QUALITY, "lossless")
    from .codecs.jpeg_quality import estimate_jpeg_quality

    try:
        tables = estimate_jpeg_quality(data).quality
    except ValueError:  # not a JPEG (WebP, AVIF): no tables to read
        tables = None
    if tables is not None:
        note = None
        if recorded is not None and recorded != tables:
            note = (
                f"{name}: its quantisation tables say quality {tables}, its metadata records {recorded} "
                f"(re-compressed after it was written?); a quality-aware model restores at {tables}, from the tables"
            )
        return QualityChoice(tables, "tables", note)
    if recorded is not None:
        return QualityChoice(check_quality(recorded), "metadata")
    return QualityChoice(None, "none")


def received_quality(data: bytes, hint: int | None = None) -> int | None:
    """The codec quality a quality-aware model restores at (:func:`choose_quality`, the
    recorded quality read from ``data``'s own metadata; ``None``: the model's default)."""
    try:
        info = info_from_bytes(data, "<bytes>")
    except ValueError:  # not an image, or corrupt metadata: nothing recorded to use
        info = None
    return choose_quality(data, hint, None if info is None else info.quality).quality


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
    """Restore the full-resolution photo from a thumbnail (its colours; the alpha channel and
    the tags are restored by :func:`decode_file`).

    Args:
        data_or_path: the thumbnail file or its bytes.
        model: overrides the model named in the metadata; required (or ``scale``, which
            then uses ``sain-x2-jpeg``) for an image without sain metadata, and for a
            thumbnail made with a weight file (the metadata is untrusted: only a zoo name
            in it is honoured, never a file; the file's hash is recorded instead).
        seed: seed of the latent sample (``None``: unseeded).
        scale: the expected scale; an error if the model's differs.
        size: ``(width, height)`` or ``"WxH"`` of the original; default from the
            metadata, else the LR size times the scale.
        tile, precision, device: as :func:`sain.encoding.encode_image`.
        quality_hint: the codec quality for a quality-aware model (default: read from the
            file: a JPEG's tables, else the recorded quality, :func:`choose_quality`).

    Returns:
        (3, H, W) RGB float in [0, 1], rounded to 8 bits.
    """
    data, name = read_bytes(data_or_path)
    return _decode(data, name, model, seed, scale, size, tile, precision, device, quality_hint=quality_hint).hr


def _thumbnail_extras(data: bytes, scale: int, size: tuple[int, int]) -> tuple[Metadata, np.ndarray | None]:
    """What a thumbnail carries into its restored PNG: its tags, and its alpha channel
    (when not opaque) upscaled by MATLAB bicubic to ``size`` (W, H), 8 bits."""
    with open_image(io.BytesIO(data)) as img:
        img.load()
        meta = file_metadata(img, META_PREFIX)
        if img.mode not in ("RGBA", "LA", "PA") and "transparency" not in img.info:
            return meta, None
        upright = ImageOps.exif_transpose(img) or img
        a = np.asarray(upright.convert("RGBA").getchannel("A"))
    if (a == 255).all():
        return meta, None
    up = bicubic_up(torch.from_numpy(a.astype(np.float32) / np.float32(255.0))[None, None], scale)
    W, H = size
    return meta, torch.round(up[0, 0, :H, :W].clamp(0, 1) * 255).to(torch.uint8).numpy()


@dataclass
class DecodeResult:
    """What :func:`decode_file` did."""

    src: Path
    dst: Path
    model: str
    lr_size: tuple[int, int]
    size: tuple[int, int]
    seconds: float
    notes: list[str] = field(default_factory=list)  # e.g. a model other than the recorded one

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
    path ending in ``/``, created). The PNG carries what the thumbnail carries: its ICC
    profile, its EXIF (less the sain metadata and the orientation) and XMP, and its alpha
    channel (WebP / AVIF), upscaled by MATLAB bicubic; it is grayscale when the thumbnail
    records a grayscale photo (and carries no RGB profile).

    ``max_pixels`` limits the restored photo's pixels (and the thumbnail's), checked from
    the header and the metadata before any model work (``None``: no limit but Pillow's).
    """
    src = Path(src)
    dst = into_folder(dst, src, "png")
    check_target(dst, force, src)
    t0 = time.perf_counter()
    data, name = read_bytes(src)
    d = _decode(data, name, model, seed, scale, size, tile, precision, device, max_pixels, quality_hint)
    H, W = d.hr.shape[-2:]
    meta, alpha = _thumbnail_extras(data, d.model.scale, (W, H))
    u8 = to_uint8(d.hr)
    gray = d.info is not None and d.info.gray and not meta.icc and bool((u8 == u8[..., :1]).all())
    pixels = u8[..., :1] if gray else u8
    if alpha is not None:
        pixels = np.concatenate([pixels, alpha[..., None]], axis=2)
    img = Image.fromarray(np.ascontiguousarray(pixels if pixels.shape[2] > 1 else pixels[..., 0]))
    write_image(dst, img, format="png", **save_args(meta, "PNG"))
    return DecodeResult(src, dst, model_name(d.model), d.lr_size, (int(W), int(H)), time.perf_counter() - t0, d.notes)
