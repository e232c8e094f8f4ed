"""Reading a photo as people have them, for ``sain encode`` (and ``roundtrip``).

    file ─header: pixel limit, frames─> frame ─EXIF orientation─> upright
    upright ─ICC profile -> sRGB (ImageCms)─> sRGB ─alpha composited on a background─> RGB
    RGB ─(grayscale? kept as a flag)─> (3, H, W) float in [0, 1] + notes + kept EXIF

What is kept and what is dropped:

* colour: an embedded ICC profile other than sRGB is applied (the pixels are converted
  to sRGB, which is what the network and every viewer of an untagged file assume); the
  profile itself is not carried further;
* EXIF: the camera and date tags of :data:`KEPT_EXIF` (make, model, lens, exposure,
  dates) are kept; orientation is applied to the pixels and dropped; GPS, maker notes,
  embedded previews, XMP and all other tags are dropped (privacy);
* grayscale: recorded as a flag (``Photo.gray``) so that the thumbnail can say so;
* transparency: composited onto ``background`` (white by default), with a note; an
  opaque alpha channel is simply dropped;
* animations and multi-page files: refused unless a frame is chosen (``frame``); a
  camera's multi-picture JPEG (MPO) is read as its primary picture.

Every failure is an :class:`~sain.imaging.io.ImageReadError` with one line naming the file.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

from .io import ImageReadError, PathLike, _detail, _name, _rgb_array, open_image

__all__ = ["EXIF_IFD", "KEPT_EXIF", "Photo", "exif_block", "kept_exif", "parse_color", "read_photo"]

#: The EXIF sub-IFD pointer (its tags are stored under this key in :func:`kept_exif`).
EXIF_IFD = 0x8769
#: The EXIF tags carried from the photo into the thumbnail and the restored PNG:
#: ``{IFD: {tag: name}}`` (IFD 0 is the main one).
KEPT_EXIF: dict[int, dict[int, str]] = {
    0: {0x010F: "Make", 0x0110: "Model", 0x0131: "Software", 0x0132: "DateTime", 0x013B: "Artist", 0x8298: "Copyright"},
    EXIF_IFD: {
        0x829A: "ExposureTime",
        0x829D: "FNumber",
        0x8827: "ISOSpeedRatings",
        0x9003: "DateTimeOriginal",
        0x9004: "DateTimeDigitized",
        0x9010: "OffsetTime",
        0x9011: "OffsetTimeOriginal",
        0x920A: "FocalLength",
        0xA405: "FocalLengthIn35mmFilm",
        0xA433: "LensMake",
        0xA434: "LensModel",
    },
}
_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


@dataclass
class Photo:
    """A photo read by :func:`read_photo`."""

    image: Tensor  # (3, H, W) float32 in [0, 1], sRGB
    gray: bool = False  # a grayscale photo (mode L / 16-bit / float, or RGB with equal channels)
    notes: list[str] = field(default_factory=list)  # what was done to it that the user should know
    exif: dict[int, dict[int, Any]] = field(default_factory=dict)  # the kept tags, {IFD: {tag: value}}


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


def kept_exif(exif: Image.Exif) -> dict[int, dict[int, Any]]:
    """The tags of :data:`KEPT_EXIF` present in ``exif``, ``{IFD: {tag: value}}``."""
    out: dict[int, dict[int, Any]] = {}
    for ifd, tags in KEPT_EXIF.items():
        try:
            src: Mapping[int, Any] = exif if ifd == 0 else exif.get_ifd(ifd)
        except Exception:  # noqa: BLE001 - a broken sub-IFD is simply not kept
            continue
        got = {t: src[t] for t in tags if t in src and src[t] not in (None, "", b"")}
        if got:
            out[ifd] = got
    return out


def exif_block(keep: Mapping[int, Mapping[int, Any]]) -> Image.Exif:
    """An EXIF block holding the tags ``{IFD: {tag: value}}`` (as :func:`kept_exif` gives)."""
    exif = Image.Exif()
    for ifd, tags in keep.items():
        target = exif if ifd == 0 else exif.get_ifd(ifd)
        for tag, value in tags.items():
            target[tag] = value
    return exif


def _to_srgb(img: Image.Image, icc: bytes, name: str, notes: list[str]) -> Image.Image:
    """``img`` converted from its ICC profile to sRGB (unchanged when it is sRGB already)."""
    from PIL import ImageCms

    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        desc = (ImageCms.getProfileDescription(src) or "").strip()
    except (OSError, ImageCms.PyCMSError, TypeError, ValueError):
        notes.append(f"{name}: its colour profile is unreadable; the values are taken as sRGB")
        return img
    if "srgb" in desc.lower().replace(" ", ""):
        return img
    if img.mode not in ("RGB", "RGBA", "CMYK"):
        return img  # a grayscale profile: the gray levels are kept as they are
    out_mode = "RGBA" if img.mode == "RGBA" else "RGB"
    try:
        converted = ImageCms.profileToProfile(
            img, src, ImageCms.createProfile("sRGB"), outputMode=out_mode, renderingIntent=ImageCms.Intent.PERCEPTUAL
        )
    except (OSError, ImageCms.PyCMSError, ValueError) as e:
        notes.append(f"{name}: its colour profile {desc!r} could not be applied ({e}); the values are taken as sRGB")
        return img
    assert converted is not None
    notes.append(f"{name}: converted from its colour profile {desc!r} to sRGB")
    return converted


def _has_transparency(img: Image.Image) -> bool:
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return True
    return img.mode in ("P", "L", "RGB") and "transparency" in img.info


def read_photo(
    path: PathLike,
    max_pixels: int | None = None,
    background: tuple[int, int, int] = (255, 255, 255),
    frame: int | None = None,
) -> Photo:
    """Read a photo for encoding: upright, in sRGB, transparency composited, see the module.

    Args:
        path: the image file.
        max_pixels: refuse images of more pixels, from the header (``None``: no limit).
        background: the colour transparent pixels are composited onto (RGB 0..255).
        frame: the frame of an animated (or multi-page) file, from 0; required for one.

    Returns:
        A :class:`Photo`; ``image`` is ``(3, H, W)`` float32 in [0, 1].

    Raises:
        ImageReadError: unreadable, too large, animated without ``frame``, or ``frame``
            out of range (one line naming the file).
    """
    name = _name(path)
    notes: list[str] = []
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
                exif = kept_exif(img.getexif())
                icc = img.info.get("icc_profile")
                upright = ImageOps.exif_transpose(img) or img
                gray = upright.mode in _GRAY_MODES
                if icc:
                    upright = _to_srgb(upright, icc, name, notes)
                if _has_transparency(upright):
                    rgba = upright.convert("RGBA")
                    alpha = np.asarray(rgba.getchannel("A"))
                    if (alpha < 255).any():
                        a = alpha.astype(np.float32)[:, :, None] / 255.0
                        rgb = np.asarray(rgba.convert("RGB"), dtype=np.float32)
                        bg = np.asarray(background, np.float32)[None, None, :]
                        mixed = np.clip(np.rint(rgb * a + bg * (1.0 - a)), 0, 255).astype(np.uint8)
                        upright = Image.fromarray(mixed, "RGB")
                        gray = gray and background[0] == background[1] == background[2]
                        where = "white" if tuple(background) == (255, 255, 255) else f"rgb{tuple(background)}"
                        notes.append(f"{name}: transparency composited onto {where} (--background)")
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
    return Photo(x.permute(2, 0, 1).contiguous(), gray, notes, exif)
