"""Reading and writing image files.

Conventions (the same across the package):

* inside: ``(3, H, W)`` float32 tensors, RGB, values in [0, 1];
* at the file boundary: ``(H, W, 3)`` uint8 numpy arrays, RGB.

:func:`read_image` always returns RGB: grayscale is replicated to three
channels, palette images are expanded, an alpha channel is **dropped** (not
composited onto a background), CMYK uses Pillow's conversion, and 16-bit
grayscale PNGs keep their full precision (divided by 65535). The EXIF
orientation tag is applied, so images come out the way viewers show them.
Pillow itself decodes 16-bit-per-channel *colour* PNGs to 8 bits, so those are
read at 8-bit precision.

:func:`write_image` writes atomically: the image goes to a temporary file in the
target directory that replaces the target only once fully written, so an
interrupted or failed write never leaves a partial file behind.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, features
from torch import Tensor

from ..codecs.quantize import to_levels
from ..codecs.registry import CODECS, check_quality
from ..fileio import atomic_path

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "ImageReadError",
    "check_pixels",
    "from_uint8",
    "list_images",
    "open_image",
    "read_image",
    "read_image_u8",
    "to_uint8",
    "write_image",
]

#: File suffixes :func:`list_images` collects (compared case-insensitively).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".avif"})

# Format names accepted by write_image (``format=`` or file suffix) -> Pillow format: the
# codecs of sain.codecs (name and suffix) and two lossless formats that only write_image uses.
_WRITE_FORMATS = {
    **{c.name: c.pil_format for c in CODECS.values()},
    **{c.suffix: c.pil_format for c in CODECS.values()},
    "bmp": "BMP",
    "tif": "TIFF",
    "tiff": "TIFF",
}
_QUALITY_FORMATS = {c.pil_format: c for c in CODECS.values() if c.quality_range is not None}
_OPTIONAL_CODECS = {c.pil_format: c.pil_feature for c in CODECS.values() if c.pil_feature}  # Pillow feature to check
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})

PathLike = str | os.PathLike

#: The default limit on an image's pixels (width x height) for the commands, checked from
#: the file's header before anything is decoded (``--max-pixels`` raises it).
DEFAULT_MAX_PIXELS = 100_000_000

_PILLOW_LIMIT = threading.Lock()


class ImageReadError(ValueError):
    """A file is missing, unreadable, not an image, or truncated."""


def _float_gray(img: Image.Image, name: str) -> np.ndarray:
    """A float (mode ``F``) image in [0, 1]: values in 0..1 are taken as they are, values in
    0..255 as 8-bit levels; anything else (negative, above 255, NaN) is refused."""
    a = np.asarray(img, dtype=np.float32)
    if not np.isfinite(a).all():
        raise ImageReadError(f"cannot read image '{name}': float image with NaN or infinite values")
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if lo < 0 or hi > 255:
        raise ImageReadError(
            f"cannot read image '{name}': float image with values {lo:g}..{hi:g}, "
            "expected 0..1 or 0..255 (convert it to 8 or 16 bits)"
        )
    return a if hi <= 1.0 else a / np.float32(255.0)


def _rgb_array(img: Image.Image, name: str = "") -> np.ndarray:
    """Decoded PIL image -> ``(H, W, 3)`` RGB array: uint8; uint16 for 16-bit grayscale;
    float32 in [0, 1] for float grayscale (mode ``F``, see :func:`_float_gray`).

    Mode ``I`` (32-bit integers) is what Pillow may use for 16-bit grayscale
    PNGs; its values are taken as 16-bit samples; values outside 0..65535 are refused.
    """
    if img.mode == "F":
        return np.repeat(_float_gray(img, name)[:, :, None], 3, axis=2)
    if img.mode in _SIXTEEN_BIT_MODES:
        gray = np.asarray(img)
        if gray.dtype != np.uint16:
            if gray.size and (gray.min() < 0 or gray.max() > 65535):
                raise ImageReadError(
                    f"cannot read image '{name}': 32-bit integer image with values "
                    f"{int(gray.min())}..{int(gray.max())}, expected 0..65535 (convert it to 8 or 16 bits)"
                )
            gray = gray.astype(np.uint16)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if img.mode in ("P", "PA"):
        img = img.convert("RGBA")  # expands the palette, incl. tRNS transparency
    if img.mode != "RGB":
        img = img.convert("RGB")  # drops alpha; replicates grayscale; CMYK -> RGB
    return np.asarray(img, dtype=np.uint8)


def _name(path: Any) -> str:
    """How a file is named in messages (never an object repr)."""
    return str(path) if isinstance(path, str | os.PathLike) else "<bytes>"


def _detail(err: BaseException, path: Any) -> str:
    """One line of a Pillow error, with object reprs of in-memory files left out."""
    text = " ".join(str(err).split()) or type(err).__name__
    if text.startswith("cannot identify image file"):
        return "not an image file (or a format Pillow cannot read)"
    for rep in ("file " + repr(path), repr(path)):  # an in-memory file's "<_io.BytesIO object at 0x...>"
        if rep.startswith(("<", "file <")):
            text = text.replace(rep, "").replace("  ", " ")
    return text.strip() or type(err).__name__


def check_pixels(width: int, height: int, max_pixels: int | None, name: str) -> None:
    """ImageReadError when ``width x height`` is above ``max_pixels`` (``None``: no limit)."""
    if max_pixels is not None and width * height > max_pixels:
        raise ImageReadError(
            f"cannot read image '{name}': {width}x{height} = {width * height:,} pixels "
            f"({width * height / 1e6:.3g} megapixels), above the limit of {max_pixels:,} (raise it with --max-pixels)"
        )


@contextlib.contextmanager
def open_image(path: PathLike | io.BytesIO, max_pixels: int | None = None) -> Iterator[Image.Image]:
    """Open an image file (not decoded yet), its size checked against ``max_pixels`` from the header.

    With ``max_pixels``, that limit replaces Pillow's decompression-bomb check; without,
    Pillow's ``DecompressionBombError`` (above twice ``PIL.Image.MAX_IMAGE_PIXELS``) and
    every other failure become an :class:`ImageReadError` naming the file, and Pillow's
    ``DecompressionBombWarning`` is never shown. An empty file says so.
    """
    name = _name(path)
    try:
        if isinstance(path, io.BytesIO):
            empty = path.getbuffer().nbytes == 0
        elif isinstance(path, str | os.PathLike):
            empty = Path(path).is_file() and Path(path).stat().st_size == 0
        else:
            empty = False
    except (OSError, TypeError, ValueError):
        empty = False
    if empty:
        raise ImageReadError(f"cannot read image '{name}': empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with _PILLOW_LIMIT:
                saved = Image.MAX_IMAGE_PIXELS
                if max_pixels is not None:
                    Image.MAX_IMAGE_PIXELS = None  # our limit, checked below with the size, replaces Pillow's
                try:
                    img = Image.open(path)
                finally:
                    Image.MAX_IMAGE_PIXELS = saved
    except Image.DecompressionBombError as err:
        raise ImageReadError(
            f"cannot read image '{name}': {_detail(err, path).split('.')[0]} (raise the limit with --max-pixels)"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        raise ImageReadError(f"cannot read image '{name}': {_detail(err, path)}") from None
    with img:
        check_pixels(img.width, img.height, max_pixels, name)
        yield img


def _read_rgb_array(path: PathLike, max_pixels: int | None = None, single_frame: bool = False) -> np.ndarray:
    """Open, fully decode and orient an image file; see :func:`_rgb_array`. ``single_frame``:
    refuse an animated or multi-page file (a camera's multi-picture JPEG counts as one)."""
    with open_image(path, max_pixels) as img:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                n = int(getattr(img, "n_frames", 1) or 1)
                if single_frame and n > 1 and img.format != "MPO":
                    raise ImageReadError(
                        f"cannot read image '{_name(path)}': it is animated or multi-page ({n} frames), "
                        "and a thumbnail is one picture; extract the frame to restore first"
                    )
                img.load()  # force a full decode so truncated files fail here
                oriented = ImageOps.exif_transpose(img)
                return _rgb_array(oriented if oriented is not None else img, _name(path))
        except ImageReadError:
            raise
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as err:
            raise ImageReadError(f"cannot read image '{_name(path)}': {_detail(err, path)}") from err


def read_image(path: PathLike, max_pixels: int | None = None, single_frame: bool = False) -> Tensor:
    """Read an image file as an RGB float tensor in [0, 1].

    Grayscale is replicated to RGB, palettes are expanded, alpha is dropped,
    CMYK is converted by Pillow, 16-bit grayscale is divided by 65535 (8-bit
    by 255), float grayscale (mode ``F``) is taken as 0..1 or 0..255 by its range,
    and the EXIF orientation is applied.

    Args:
        path: the image file.
        max_pixels: refuse images of more pixels, checked from the header before
            decoding (``None``: only Pillow's own decompression-bomb limit).
        single_frame: refuse an animated or multi-page file instead of reading its first
            frame (what ``sain decode`` asks: a thumbnail is one picture).

    Shape:
        output: ``(3, H, W)``, float32.

    Returns:
        The image, values in [0, 1].

    Raises:
        ImageReadError: if the file is missing, unreadable, not an image, or
            truncated (the message names the file).
    """
    arr = _read_rgb_array(path, max_pixels, single_frame)
    if arr.dtype == np.float32:
        return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).contiguous()
    peak = np.float32(65535.0 if arr.dtype == np.uint16 else 255.0)
    x = torch.from_numpy(arr.astype(np.float32) / peak)
    return x.permute(2, 0, 1).contiguous()


def read_image_u8(path: PathLike) -> np.ndarray:
    """Read an image file as an RGB uint8 array.

    Same conversions as :func:`read_image`; 16-bit samples ``v`` become
    ``round(v * 255 / 65535)``.

    Args:
        path: the image file.

    Shape:
        output: ``(H, W, 3)``, uint8.

    Raises:
        ImageReadError: as :func:`read_image`.
    """
    arr = _read_rgb_array(path)
    if arr.dtype == np.float32:
        arr = np.rint(arr * 255.0).astype(np.uint8)
    elif arr.dtype == np.uint16:
        arr = np.rint(arr / 257.0).astype(np.uint8)  # 255 / 65535 == 1 / 257
    return arr


def to_uint8(x: Tensor) -> np.ndarray:
    """Quantise an RGB float image to 8 bits: ``round(clamp(x, 0, 1) * 255)``.

    Rounding is :func:`sain.codecs.quantize.to_levels` (``torch.round``, halves to even),
    the same as the package's differentiable quantiser, so ``to_uint8`` of a quantised
    image is exact.
    float16/bfloat16 inputs are computed in float32.

    Args:
        x: float image in [0, 1] (values outside are clamped), any device.

    Shape:
        - x: ``(3, H, W)``.
        - output: ``(H, W, 3)``, uint8, on the CPU.

    Raises:
        ValueError: if ``x`` is not a float ``(3, H, W)`` tensor.
    """
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() != 3 or x.shape[0] != 3:
        desc = f"{x.dtype} tensor of shape {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"to_uint8 expects a float (3, H, W) tensor, got a {desc}")
    x = x.detach()
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    q = to_levels(x).to(torch.uint8)
    return q.permute(1, 2, 0).cpu().numpy()


def from_uint8(a: np.ndarray) -> Tensor:
    """Convert an RGB uint8 array to a float tensor in [0, 1] (``a / 255``).

    Shape:
        - a: ``(H, W, 3)``, uint8.
        - output: ``(3, H, W)``, float32.

    Raises:
        ValueError: if ``a`` is not a uint8 ``(H, W, 3)`` array.
    """
    if not isinstance(a, np.ndarray) or a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        desc = f"{a.dtype} array of shape {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
        raise ValueError(f"from_uint8 expects a uint8 (H, W, 3) array, got a {desc}")
    x = torch.from_numpy(a.astype(np.float32) / np.float32(255.0))
    return x.permute(2, 0, 1).contiguous()


def _to_pil(img: Tensor | np.ndarray | Image.Image) -> Image.Image:
    if isinstance(img, Image.Image):
        return img
    if isinstance(img, Tensor):
        return Image.fromarray(to_uint8(img))
    if isinstance(img, np.ndarray):
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"write_image expects a uint8 (H, W, 3) array, got {img.dtype} {img.shape}")
        return Image.fromarray(np.ascontiguousarray(img))
    raise ValueError(
        f"write_image expects a (3, H, W) tensor, a (H, W, 3) uint8 array or a PIL image, got {type(img).__name__}"
    )


def _pil_format(path: Path, format: str | None) -> str:
    name = format if format is not None else path.suffix.lstrip(".")
    pil_format = _WRITE_FORMATS.get(name.lower())
    if pil_format is None:
        what = f"format {format!r}" if format is not None else f"file suffix {path.suffix!r}"
        raise ValueError(f"cannot write {path}: unsupported {what} (supported: {', '.join(sorted(_WRITE_FORMATS))})")
    feature = _OPTIONAL_CODECS.get(pil_format)
    if feature is not None and not features.check(feature):
        raise RuntimeError(
            f"cannot write {path}: this Pillow build has no {pil_format} support (Pillow >= 11.3 wheels include it)"
        )
    return pil_format


def write_image(
    path: PathLike,
    img: Tensor | np.ndarray | Image.Image,
    format: str | None = None,
    quality: int | None = None,
    **pil_kwargs: Any,
) -> Path:
    """Write an image file atomically.

    The image is saved to a temporary file in the same directory, flushed to
    disk, then moved over ``path`` with :func:`os.replace`; on any error the
    temporary file is removed and an existing ``path`` is left untouched.

    Args:
        path: target file; its directory must exist.
        img: ``(3, H, W)`` float tensor in [0, 1] (quantised with
            :func:`to_uint8`), ``(H, W, 3)`` uint8 array, or a PIL image
            (saved as is).
        format: ``"png"``, ``"jpeg"``/``"jpg"``, ``"webp"``, ``"avif"``,
            ``"bmp"`` or ``"tiff"``; inferred from the suffix of ``path`` when
            omitted.
        quality: codec quality 1..100 for JPEG, WebP and AVIF; other settings
            stay Pillow's defaults (JPEG: 4:2:0 chroma subsampling).
        **pil_kwargs: passed to :meth:`PIL.Image.Image.save` (``pnginfo``,
            ``exif``, ``comment``, ``lossless``, ``subsampling``, ...).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: unsupported format, bad image, or ``quality`` out of range
            or given for a lossless format.
        RuntimeError: the Pillow build lacks the WebP/AVIF codec.
    """
    path = Path(path)
    pil_format = _pil_format(path, format)
    if quality is not None:
        if pil_format not in _QUALITY_FORMATS:
            raise ValueError(f"quality applies to JPEG, WebP and AVIF only, not {pil_format}")
        pil_kwargs["quality"] = check_quality(quality, _QUALITY_FORMATS[pil_format])
    pil = _to_pil(img)

    with atomic_path(path) as tmp:
        with open(tmp, "xb") as f:
            pil.save(f, format=pil_format, **pil_kwargs)
            f.flush()
            os.fsync(f.fileno())
    return path


def list_images(folder: PathLike, recursive: bool = True) -> list[Path]:
    """List the image files in a folder, sorted.

    Files whose suffix is in :data:`IMAGE_SUFFIXES` (any case) are collected;
    hidden files (name starting with ``.``, e.g. macOS ``._x.png`` or
    :func:`write_image`'s temporaries) are skipped.

    Args:
        folder: the directory to scan.
        recursive: also scan sub-directories.

    Returns:
        Sorted paths.

    Raises:
        NotADirectoryError: if ``folder`` is not an existing directory.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"not a directory: {folder}")
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        p for p in candidates if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )
