"""Real image codecs (JPEG, WebP, AVIF, PNG) through Pillow, on batched tensors.

This is the codec ``R`` of the SAIN training loss and of the evaluation protocol
(Yang et al., AAAI 2023): the LR image is rounded to 8 bits, encoded with
Pillow's default settings at the requested quality, decoded, and brought back as
a float tensor. There is no gradient through it::

    x (float, [0, 1]) --clamp, round(x * 255)--> uint8 --encode--> bytes --decode--> uint8 --/255--> x_hat

For JPEG, Pillow's defaults mean libjpeg(-turbo) with the standard quantisation
tables scaled by ``quality`` (baseline, clamped to 255), 4:2:0 chroma subsampling,
the integer ("islow") DCT and fancy (triangle) chroma upsampling in the decoder.
WebP is lossy at ``quality`` with the default method; AVIF uses Pillow's avif
plugin at ``quality``; PNG is lossless (``quality`` is ignored).
"""

from __future__ import annotations

import io
import numbers
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .quantize import to_levels
from .registry import CODECS, available_codecs, check_quality, get_codec

__all__ = [
    "FORMATS",
    "RealCodec",
    "available_formats",
    "codec_roundtrip",
    "decode",
    "encode",
]

#: Every format this module knows (the names of :data:`sain.codecs.registry.CODECS`).
#: ``available_formats()`` says which ones the installed Pillow can actually write.
FORMATS: tuple[str, ...] = tuple(CODECS)

_SUBSAMPLING_NAMES = ("4:4:4", "4:2:2", "4:2:0")
_SUBSAMPLING_INTS = (-1, 0, 1, 2)


def available_formats() -> tuple[str, ...]:
    """The formats of :data:`FORMATS` the installed Pillow can encode and decode.

    Returns:
        A tuple, in the order of :data:`FORMATS`; ``"avif"`` only when
        ``PIL.features.check("avif")`` is true (likewise ``"webp"``).
    """
    return tuple(c.name for c in available_codecs())


def check_format(fmt: str, allowed: tuple[str, ...] = FORMATS) -> str:
    """``fmt`` normalised (lower case, ``"jpg"`` -> ``"jpeg"``).

    Raises:
        ValueError: ``fmt`` is not in ``allowed``, or the installed Pillow cannot code it;
            the one-line message names the supported (or available) ones.
    """
    try:
        f = get_codec(fmt).name
    except ValueError:
        f = None
    if f not in allowed:
        raise ValueError(f"unknown format {fmt!r} (supported: {', '.join(allowed)})")
    if f not in available_formats():
        raise ValueError(
            f"format {f!r} is not available in the installed Pillow "
            f"(available: {', '.join(x for x in allowed if x in available_formats())})"
        )
    return f


_check_format = check_format


def _check_subsampling(subsampling: str | int | None, fmt: str) -> str | int | None:
    if subsampling is None:
        return None
    if fmt != "jpeg":
        raise ValueError(f"subsampling only applies to JPEG, not {fmt!r}")
    if isinstance(subsampling, str) and subsampling in _SUBSAMPLING_NAMES:
        return subsampling
    if (
        isinstance(subsampling, numbers.Integral)
        and not isinstance(subsampling, bool)
        and int(subsampling) in _SUBSAMPLING_INTS
    ):
        return int(subsampling)
    raise ValueError(
        f"subsampling must be None, one of {_SUBSAMPLING_NAMES} or a Pillow int "
        f"{_SUBSAMPLING_INTS}, got {subsampling!r}"
    )


def _encode_checked(
    img_u8: np.ndarray,
    fmt: str,
    quality: int,
    subsampling: str | int | None = None,
    exif: Image.Exif | None = None,
) -> bytes:
    """The one Pillow encode of the package (arguments already checked)."""
    codec = CODECS[fmt]
    image = Image.fromarray(np.ascontiguousarray(img_u8))
    params: dict[str, object] = {}
    if codec.quality_range is not None:
        params["quality"] = quality
    if subsampling is not None:
        params["subsampling"] = subsampling
    if exif is not None:
        params["exif"] = exif
    buf = io.BytesIO()
    image.save(buf, format=codec.pil_format, **params)
    return buf.getvalue()


def encode(
    img_u8: np.ndarray,
    fmt: str,
    quality: int = 75,
    subsampling: str | int | None = None,
    exif: Image.Exif | None = None,
) -> bytes:
    """Encode one 8-bit RGB image with Pillow.

    Args:
        img_u8: RGB image, ``uint8``, HWC.
        fmt: One of :data:`FORMATS` (case-insensitive) that
            :func:`available_formats` lists.
        quality: Integer quality in 1..100 (ignored for PNG, still validated).
        subsampling: JPEG chroma subsampling: ``None`` (Pillow's default,
            4:2:0), ``"4:4:4"``, ``"4:2:2"``, ``"4:2:0"`` or Pillow's ints
            (-1, 0, 1, 2). Must be ``None`` for other formats.
        exif: EXIF data to embed (e.g. :meth:`sain.thumbnail.ThumbnailInfo.exif`).

    Shape:
        - img_u8: (H, W, 3)

    Returns:
        The compressed file, as bytes.

    Raises:
        ValueError: unknown or unavailable format, bad quality, bad subsampling,
            or an image that is not (H, W, 3) uint8.
    """
    fmt = _check_format(fmt)
    quality = check_quality(quality)
    subsampling = _check_subsampling(subsampling, fmt)
    if not isinstance(img_u8, np.ndarray) or img_u8.dtype != np.uint8:
        raise ValueError("img_u8 must be a numpy uint8 array")
    if img_u8.ndim != 3 or img_u8.shape[2] != 3:
        raise ValueError(f"img_u8 must have shape (H, W, 3), got {img_u8.shape}")
    return _encode_checked(img_u8, fmt, quality, subsampling, exif)


def decode(data: bytes) -> np.ndarray:
    """Decode a compressed image with Pillow into 8-bit RGB.

    Args:
        data: A complete JPEG, WebP, AVIF or PNG file.

    Returns:
        ``uint8`` array of shape (H, W, 3), RGB.
    """
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        return np.asarray(rgb, dtype=np.uint8).copy()


def codec_roundtrip(
    x: Tensor,
    fmt: str = "jpeg",
    quality: int = 75,
    subsampling: str | int | None = None,
    workers: int = 1,
) -> tuple[Tensor, list[int]]:
    """Compress and decompress a batch of images with a real codec (no gradient).

    Each image is clamped to [0, 1], rounded to 8 bits (``round(x * 255)``),
    encoded by Pillow with ``fmt`` at ``quality`` and decoded.

    Args:
        x: RGB image(s), floating point, nominally in [0, 1].
        fmt: One of :func:`available_formats` (``"jpeg"``, ``"webp"``,
            ``"avif"``, ``"png"``).
        quality: Integer quality in 1..100 (ignored for PNG).
        subsampling: JPEG chroma subsampling, see :func:`encode`.
        workers: Number of threads encoding the images of the batch in
            parallel (Pillow releases the GIL while coding).

    Shape:
        - x: (N, 3, H, W) or (3, H, W)
        - output: same as ``x``.

    Returns:
        ``(x_hat, sizes)``: the decoded images as a tensor with the shape, dtype
        and device of ``x`` and values ``k / 255``, detached from the graph; and
        the compressed size in bytes of each image (a list of N ints, one int in
        a list for a single (3, H, W) image).

    Raises:
        ValueError: bad format, quality, subsampling, shape, non-finite values
            or ``workers < 1``.
        TypeError: ``x`` is not a floating-point tensor.

    Example:
        >>> x = torch.rand(2, 3, 16, 16)
        >>> y, sizes = codec_roundtrip(x, "jpeg", quality=75)
        >>> y.shape, len(sizes)
        (torch.Size([2, 3, 16, 16]), 2)
    """
    fmt = _check_format(fmt)
    quality = check_quality(quality)
    subsampling = _check_subsampling(subsampling, fmt)
    if isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    if not isinstance(x, Tensor) or not torch.is_floating_point(x):
        raise TypeError("x must be a floating-point torch.Tensor")
    single = x.dim() == 3
    if x.dim() not in (3, 4) or x.shape[-3] != 3:
        raise ValueError(f"x must have shape (N, 3, H, W) or (3, H, W), got {tuple(x.shape)}")
    if x.shape[-1] == 0 or x.shape[-2] == 0:
        raise ValueError(f"x must have H, W >= 1, got {tuple(x.shape)}")

    with torch.no_grad():
        batch = x.detach().unsqueeze(0) if single else x.detach()
        if not torch.isfinite(batch).all():
            raise ValueError("x contains NaN or infinite values")
        u8 = to_levels(batch).to(torch.uint8)
        images = list(u8.permute(0, 2, 3, 1).cpu().numpy())

        def roundtrip(img: np.ndarray) -> tuple[np.ndarray, int]:
            data = _encode_checked(img, fmt, quality, subsampling)
            return decode(data), len(data)

        if workers > 1 and len(images) > 1:
            with ThreadPoolExecutor(max_workers=min(int(workers), len(images))) as pool:
                results = list(pool.map(roundtrip, images))
        else:
            results = [roundtrip(img) for img in images]

        if results:
            decoded = np.stack([r[0] for r in results])
        else:
            decoded = np.zeros((0, *u8.shape[2:], 3), dtype=np.uint8)
        sizes = [r[1] for r in results]
        out = torch.from_numpy(decoded).permute(0, 3, 1, 2).to(device=x.device, dtype=x.dtype)
        out = out / 255.0
    return (out[0] if single else out), sizes


class RealCodec:
    """A real codec at a fixed format and quality, as a callable.

    Args:
        fmt: One of :func:`available_formats`.
        quality: Integer quality in 1..100.
        subsampling: JPEG chroma subsampling, see :func:`encode`.
        workers: Threads used per batch, see :func:`codec_roundtrip`.

    Shape:
        - input: (N, 3, H, W) or (3, H, W), float in [0, 1]
        - output: same as the input.

    Example:
        >>> jpeg75 = RealCodec("jpeg", 75)
        >>> jpeg75(torch.rand(1, 3, 8, 8)).shape
        torch.Size([1, 3, 8, 8])
    """

    def __init__(
        self,
        fmt: str = "jpeg",
        quality: int = 75,
        subsampling: str | int | None = None,
        workers: int = 1,
    ) -> None:
        self.fmt = _check_format(fmt)
        self.quality = check_quality(quality)
        self.subsampling = _check_subsampling(subsampling, self.fmt)
        if isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 1:
            raise ValueError(f"workers must be an int >= 1, got {workers!r}")
        self.workers: int = int(workers)

    def roundtrip(self, x: Tensor) -> tuple[Tensor, list[int]]:
        """Decoded images and compressed sizes in bytes, see :func:`codec_roundtrip`."""
        return codec_roundtrip(x, self.fmt, self.quality, self.subsampling, self.workers)

    def __call__(self, x: Tensor) -> Tensor:
        """The decoded images (no gradient), same shape, dtype and device as ``x``."""
        return self.roundtrip(x)[0]

    def __repr__(self) -> str:
        extra = "" if self.subsampling is None else f", subsampling={self.subsampling!r}"
        return f"RealCodec({self.fmt!r}, quality={self.quality}{extra})"
