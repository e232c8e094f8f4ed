"""Reading a photo as people have them, for ``sain encode`` (and ``roundtrip``).

    file ─header: pixel limit, frames─> frame ─EXIF orientation─> upright
    upright ─ICC profile: kept as a tag, or converted to sRGB (icc)─> RGB values
    values ─alpha: kept apart (keep_alpha), or composited on a background─> RGB
    RGB ─(grayscale? kept as a flag)─> (3, H, W) float in [0, 1] + alpha + notes + Metadata

What is kept and what is dropped (:mod:`sain.imaging.metadata`):

* colour: with ``icc="keep"`` (default) an RGB ICC profile is carried as it is
  (``Photo.metadata.icc``) and the stored values are used; ``"convert-srgb"`` converts the
  pixels to sRGB and drops the profile. A CMYK profile is always applied (an RGB file
  cannot carry it); a grayscale one is not carried (the thumbnail is RGB), with a note;
* EXIF and XMP: dropped by default (privacy); with ``keep_metadata`` copied, less the
  orientation (applied to the pixels) and the EXIF ImageDescription;
* grayscale: recorded as a flag (``Photo.gray``) so that the thumbnail can say so;
* transparency: with ``keep_alpha``, the alpha channel is returned apart (``Photo.alpha``)
  and the colours are the stored ones; otherwise composited onto ``background`` (white
  by default), with a note; an opaque alpha channel is simply dropped;
* animations and multi-page files: refused unless a frame is chosen (``frame``); a
  camera's multi-picture JPEG (MPO) is read as its primary picture.

Every failure is an :class:`~sain.imaging.io.ImageReadError` with one line naming the file.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

from .io import ImageReadError, PathLike, _detail, _name, _rgb_array, open_image
from .metadata import Metadata, check_icc, profile_space, source_metadata, to_srgb

__all__ = ["Photo", "parse_color", "read_photo"]

_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


@dataclass
class Photo:
    """A photo read by :func:`read_photo`."""

    image: Tensor  # (3, H, W) float32 in [0, 1]: the stored values (icc="keep") or sRGB
    gray: bool = False  # a grayscale photo (mode L / 16-bit / float, or RGB with equal channels)
    notes: list[str] = field(default_factory=list)  # what was done to it that the user should know
    metadata: Metadata = field(default_factory=Metadata)  # what its outputs are tagged with
    alpha: Tensor | None = None  # (H, W) float32 in [0, 1], with keep_alpha and some transparency


def parse_color(text: str) -> tuple[int, int, int]:
    """``"white"``, ``"#ffffff"``, ``"255,255,255"`` -> ``(255, 255, 255)``; ValueError otherwise."""
    from PIL import ImageColor

    t = str(text).strip()
    try:
        if "," in t:
            rgb = tuple(int(v) for v in t.split(","))
            if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
                raise ValueError
            return rgb[0], rgb[1], rgb[2]
        c = ImageColor.getrgb(t)
        return c[0], c[1], c[2]
    except ValueError:
        raise ValueError(f"not a colour: {text!r} (a name like white, #rrggbb or R,G,B)") from None


def _has_transparency(img: Image.Image) -> bool:
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return True
    return img.mode in ("P", "L", "RGB") and "transparency" in img.info


def _colour(
    img: Image.Image, profile: bytes, icc: str, name: str, notes: list[str]
) -> tuple[Image.Image, bytes | None]:
    """``(image, the profile to carry)``: see the module (``icc`` is ``keep`` or ``convert-srgb``)."""
    if icc == "convert-srgb" or img.mode == "CMYK":  # an RGB thumbnail cannot carry a CMYK profile
        return to_srgb(img, profile, name, notes), None
    space = profile_space(profile)
    if space is None:
        notes.append(f"{name}: its colour profile is unreadable and is not kept; the values are taken as sRGB")
        return img, None
    if space[0] != "RGB" or img.mode in _GRAY_MODES:
        notes.append(
            f"{name}: its {space[0].lower()} colour profile {space[1]!r} is not kept (the thumbnail is RGB); "
            "the values are kept as they are"
        )
        return img, None
    return img, profile


def _transparency(
    img: Image.Image, keep_alpha: bool, background: tuple[int, int, int], name: str, notes: list[str]
) -> tuple[Image.Image, Tensor | None]:
    """``(image without transparency, alpha or None)``: the alpha apart (``keep_alpha``),
    or the image composited onto ``background`` with a note."""
    if not _has_transparency(img):
        return img, None
    rgba = img.convert("RGBA")
    alpha = np.asarray(rgba.getchannel("A"))
    if not (alpha < 255).any():
        return img, None  # an opaque alpha channel: simply dropped
    if keep_alpha:
        return rgba.convert("RGB"), torch.from_numpy(alpha.astype(np.float32) / np.float32(255.0))
    a = alpha.astype(np.float32)[:, :, None] / 255.0
    rgb = np.asarray(rgba.convert("RGB"), dtype=np.float32)
    bg = np.asarray(background, np.float32)[None, None, :]
    mixed = np.clip(np.rint(rgb * a + bg * (1.0 - a)), 0, 255).astype(np.uint8)
    where = "white" if tuple(background) == (255, 255, 255) else f"rgb{tuple(background)}"
    notes.append(
        f"{name}: transparency composited onto {where} (--background); "
        "WebP and AVIF thumbnails keep it (sain encode --format webp)"
    )
    return Image.fromarray(mixed, "RGB"), None


def read_photo(
    path: PathLike,
    max_pixels: int | None = None,
    background: tuple[int, int, int] = (255, 255, 255),
    frame: int | None = None,
    icc: str = "keep",
    keep_metadata: bool = False,
    keep_alpha: bool = False,
) -> Photo:
    """Read a photo for encoding: upright, its colour profile and transparency handled, see the module.

    Args:
        path: the image file.
        max_pixels: refuse images of more pixels, from the header (``None``: no limit).
        background: the colour transparent pixels are composited onto (RGB 0..255).
        frame: the frame of an animated (or multi-page) file, from 0; required for one.
        icc: ``"keep"`` (the stored values, the profile carried in ``Photo.metadata``) or
            ``"convert-srgb"`` (the pixels converted to sRGB, no profile).
        keep_metadata: carry the EXIF (less orientation and ImageDescription) and XMP.
        keep_alpha: return transparency as ``Photo.alpha`` instead of compositing it.

    Returns:
        A :class:`Photo`; ``image`` is ``(3, H, W)`` float32 in [0, 1].

    Raises:
        ImageReadError: unreadable, too large, animated without ``frame``, or ``frame``
            out of range (one line naming the file).
        ValueError: ``icc`` is not one of :data:`~sain.imaging.metadata.ICC_MODES`.
    """
    check_icc(icc)
    name = _name(path)
    notes: list[str] = []
    meta = Metadata()
    with open_image(path, max_pixels) as img:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                n = int(getattr(img, "n_frames", 1) or 1)
                if img.format == "MPO":
                    n = 1  # a camera's multi-picture JPEG: the primary picture
                if frame is not None and not 0 <= frame < n:
                    raise ImageReadError(
                        f"cannot read image '{name}': no frame {frame} (it has {n}; --frame 0..{n - 1})"
                    )
                if n > 1 and frame is None:
                    raise ImageReadError(
                        f"cannot read image '{name}': it is animated or multi-page ({n} frames); "
                        f"choose one with --frame N (0..{n - 1})"
                    )
                if frame:
                    img.seek(frame)
                img.load()
                if keep_metadata:
                    meta.exif, meta.xmp = source_metadata(img, name, notes)
                profile = img.info.get("icc_profile")
                upright = ImageOps.exif_transpose(img) or img
                gray = upright.mode in _GRAY_MODES
                if profile:
                    upright, meta.icc = _colour(upright, profile, icc, name, notes)
                opaque, alpha = _transparency(upright, keep_alpha, background, name, notes)
                if opaque is not upright and alpha is None:  # composited: gray only on a gray background
                    gray = gray and background[0] == background[1] == background[2]
                upright = opaque
                arr = _rgb_array(upright, name)
        except ImageReadError:
            raise
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as err:
            raise ImageReadError(f"cannot read image '{name}': {_detail(err, path)}") from err
    if not gray and arr.dtype == np.uint8:
        gray = bool((arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all())
    if arr.dtype == np.float32:
        x = torch.from_numpy(np.ascontiguousarray(arr))
    else:
        peak = np.float32(65535.0 if arr.dtype == np.uint16 else 255.0)
        x = torch.from_numpy(arr.astype(np.float32) / peak)
    return Photo(x.permute(2, 0, 1).contiguous(), gray, notes, meta, alpha)
