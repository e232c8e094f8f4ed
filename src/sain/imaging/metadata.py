"""What a photo carries besides its pixels: its colour profile (ICC), EXIF and XMP.

    source ─ICC profile: "keep" carries it; "convert-srgb" applies it (ImageCms), then drops it─> Metadata.icc
    source ─EXIF less orientation and ImageDescription, XMP less orientation (keep_metadata only)─> Metadata
    Metadata ─save_args(format)─> the Pillow arguments that tag a thumbnail or a restored PNG

The network works on the values a file stores: with ``icc="keep"`` (the default) those
values are downscaled as they are and both outputs are tagged with the source's profile
bytes, so a colour-managed viewer shows them as it showed the source. ``"convert-srgb"``
converts the pixels to sRGB first and writes untagged sRGB (for services that want it).

EXIF and XMP are stripped by default (privacy: GPS, serial numbers, names); with
``keep_metadata`` they are copied, less the orientation (applied to the pixels) and the
EXIF ImageDescription (where a thumbnail keeps its own metadata, :mod:`sain.thumbnail`).
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, PngImagePlugin

__all__ = [
    "DESCRIPTION_TAG",
    "EXIF_IFD",
    "ICC_MODES",
    "MAX_BLOCK_BYTES",
    "ORIENTATION_TAG",
    "Metadata",
    "check_icc",
    "copy_exif",
    "encode_tagged",
    "file_metadata",
    "profile_space",
    "save_args",
    "source_exif",
    "source_metadata",
    "source_xmp",
    "strip_xmp_orientation",
    "to_srgb",
]

#: ``icc=`` / ``--icc`` values: carry the source's profile (default), or convert to sRGB.
ICC_MODES = ("keep", "convert-srgb")
#: The EXIF tags never copied: the orientation (applied to the pixels) and ImageDescription
#: (a thumbnail's own metadata lives there).
ORIENTATION_TAG = 0x0112
DESCRIPTION_TAG = 0x010E
EXIF_IFD = 0x8769
#: Tags that describe a file's pixel layout, not the photo (a TIFF's IFD0 is its EXIF block):
#: size, samples, compression, strips and tiles, embedded JPEG preview, and the blobs a TIFF
#: keeps as tags (XMP, ICC profile, Photoshop, IPTC), which are carried apart or not at all.
_STRUCTURE_TAGS = (
    *range(254, 260),  # NewSubfileType .. Compression
    *range(262, 267),  # PhotometricInterpretation .. FillOrder
    273,  # StripOffsets
    *range(277, 282),  # SamplesPerPixel .. MaxSampleValue
    284,  # PlanarConfiguration
    *range(288, 294),  # FreeOffsets .. T4/T6 options
    317,  # Predictor
    320,  # ColorMap
    *range(322, 326),  # TileWidth .. TileByteCounts
    *range(338, 342),  # ExtraSamples, SampleFormat, S/MaxSampleValue
    347,  # JPEGTables
    513,  # JPEGInterchangeFormat (a preview)
    514,  # JPEGInterchangeFormatLength
    530,  # YCbCrSubSampling
    700,  # XMP
    33723,  # IPTC
    34377,  # Photoshop
    34675,  # ICC profile
    37724,  # ImageSourceData
)
#: The largest EXIF or XMP block carried (a JPEG marker segment holds at most 65,533 bytes).
MAX_BLOCK_BYTES = 65_000
_MAKER_NOTE = 0x927C
_XMP_ORIENTATION = (
    re.compile(rb'\s*tiff:Orientation\s*=\s*"[0-9]*"'),
    re.compile(rb"<tiff:Orientation>\s*[0-9]*\s*</tiff:Orientation>"),
)


@dataclass
class Metadata:
    """What an output file is tagged with besides the pixels (each ``None``: none)."""

    icc: bytes | None = None  # the ICC profile, its bytes as the source had them
    exif: Image.Exif | None = None  # without orientation and ImageDescription
    xmp: bytes | None = None  # without orientation


def check_icc(icc: str) -> str:
    """``icc`` if it is one of :data:`ICC_MODES`; ValueError otherwise."""
    if icc not in ICC_MODES:
        raise ValueError(f"icc must be one of {', '.join(ICC_MODES)}, got {icc!r}")
    return icc


def profile_space(icc: bytes) -> tuple[str, str] | None:
    """``(colour space, description)`` of an ICC profile (``"RGB"``, ``"GRAY"``, ``"CMYK"``,
    ...); ``None`` when it cannot be read."""
    from PIL import ImageCms

    try:
        prof = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        desc = (ImageCms.getProfileDescription(prof) or "").strip()
        return str(prof.profile.xcolor_space).strip().upper(), desc
    except (OSError, ImageCms.PyCMSError, TypeError, ValueError, AttributeError):
        return None


def to_srgb(img: Image.Image, icc: bytes, name: str, notes: list[str]) -> Image.Image:
    """``img`` converted from its ICC profile to sRGB (unchanged when it is sRGB already,
    or grayscale: the gray levels are kept as they are); a note says what was done."""
    from PIL import ImageCms

    space = profile_space(icc)
    if space is None:
        notes.append(f"{name}: its colour profile is unreadable; the values are taken as sRGB")
        return img
    desc = space[1]
    if "srgb" in desc.lower().replace(" ", ""):
        return img
    if img.mode not in ("RGB", "RGBA", "CMYK"):
        return img  # a grayscale profile: the gray levels are kept as they are
    out_mode = "RGBA" if img.mode == "RGBA" else "RGB"
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(
            img, src, ImageCms.createProfile("sRGB"), outputMode=out_mode, renderingIntent=ImageCms.Intent.PERCEPTUAL
        )
    except (OSError, ImageCms.PyCMSError, ValueError) as e:
        notes.append(f"{name}: its colour profile {desc!r} could not be applied ({e}); the values are taken as sRGB")
        return img
    assert converted is not None
    notes.append(f"{name}: converted from its colour profile {desc!r} to sRGB")
    return converted


def copy_exif(exif: Image.Exif, drop: tuple[int, ...] = ()) -> Image.Exif | None:
    """A copy of an EXIF block (its Exif and GPS sub-IFDs included) without the tags
    ``drop``; ``None`` when nothing is left or the block cannot be written back."""
    try:
        out = Image.Exif()
        out.load(exif.tobytes())
        for tag in drop:
            out.pop(tag, None)
        if not len(out):
            return None
        out.tobytes()  # a block that cannot be written is not carried
        return out
    except Exception:  # noqa: BLE001 - a malformed block (any error of Pillow's TIFF writer) is not carried
        return None


def source_exif(img: Image.Image, name: str, notes: list[str]) -> Image.Exif | None:
    """The EXIF of a source photo to copy into its outputs: all but the orientation, the
    ImageDescription and the tags of a file's pixel layout (a note says when the photo had a
    description, or when its EXIF is unreadable)."""
    try:
        exif = img.getexif()
    except Exception:  # noqa: BLE001 - Pillow raises many kinds on broken EXIF
        notes.append(f"{name}: its EXIF is unreadable and is not kept")
        return None
    if not len(exif):
        return None
    if exif.get(DESCRIPTION_TAG):
        notes.append(f"{name}: its EXIF ImageDescription is not kept (a thumbnail keeps its own metadata there)")
    drop = (ORIENTATION_TAG, DESCRIPTION_TAG, *_STRUCTURE_TAGS)
    out = copy_exif(exif, drop)
    if out is None and set(exif) - set(drop):
        notes.append(f"{name}: its EXIF cannot be copied and is not kept")
    if out is not None and len(out.tobytes()) > MAX_BLOCK_BYTES:
        out.get_ifd(EXIF_IFD).pop(_MAKER_NOTE, None)
        kept = len(out.tobytes()) <= MAX_BLOCK_BYTES
        what = "its camera's maker note is" if kept else "its EXIF is"
        notes.append(f"{name}: {what} too large for a thumbnail ({MAX_BLOCK_BYTES:,} bytes at most) and is not kept")
        out = out if kept else None
    return out


def strip_xmp_orientation(xmp: bytes) -> bytes:
    """An XMP packet without ``tiff:Orientation`` (as attribute or element)."""
    for pattern in _XMP_ORIENTATION:
        xmp = pattern.sub(b"", xmp)
    return xmp


def source_xmp(img: Image.Image) -> bytes | None:
    """The raw XMP packet of an image file (JPEG, PNG, WebP, AVIF, TIFF), orientation removed."""
    raw: Any = img.info.get("xmp") or img.info.get("XML:com.adobe.xmp")
    if raw is None and hasattr(img, "tag_v2"):
        raw = img.tag_v2.get(700)  # TIFF's XMP tag
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if not isinstance(raw, bytes | bytearray) or not raw.strip():
        return None
    return strip_xmp_orientation(bytes(raw))


def _source_xmp(img: Image.Image, name: str, notes: list[str]) -> bytes | None:
    xmp = source_xmp(img)
    if xmp is not None and len(xmp) > MAX_BLOCK_BYTES:
        notes.append(
            f"{name}: its XMP is too large for a thumbnail ({MAX_BLOCK_BYTES:,} bytes at most) and is not kept"
        )
        return None
    return xmp


def source_metadata(img: Image.Image, name: str, notes: list[str]) -> tuple[Image.Exif | None, bytes | None]:
    """``(EXIF, XMP)`` of a source photo to copy into its outputs (:func:`source_exif`,
    :func:`source_xmp`); a block too large for a JPEG thumbnail is left out with a note."""
    return source_exif(img, name, notes), _source_xmp(img, name, notes)


def file_metadata(img: Image.Image, own_prefix: str) -> Metadata:
    """What a thumbnail (an opened image file) carries into its restored PNG: its profile,
    its EXIF less the orientation (and less an ImageDescription starting with
    ``own_prefix``: the thumbnail's own metadata), its XMP less the orientation."""
    try:
        block = img.getexif()
        desc = block.get(DESCRIPTION_TAG)
        if isinstance(desc, bytes):
            desc = desc.decode("utf-8", "replace")
        own = isinstance(desc, str) and desc.startswith(own_prefix)
        drop = (ORIENTATION_TAG, *_STRUCTURE_TAGS, *((DESCRIPTION_TAG,) if own else ()))
        exif = copy_exif(block, drop)
    except Exception:  # noqa: BLE001 - broken EXIF in a thumbnail: nothing copied
        exif = None
    return Metadata(icc=img.info.get("icc_profile") or None, exif=exif, xmp=source_xmp(img))


def save_args(meta: Metadata | None, pil_format: str, exif: Image.Exif | None = None) -> dict[str, Any]:
    """The :meth:`PIL.Image.Image.save` arguments that tag a file of ``pil_format`` with
    ``meta`` (``exif``, when given, replaces ``meta.exif``)."""
    meta = meta or Metadata()
    block = exif if exif is not None else meta.exif
    out: dict[str, Any] = {}
    if block is not None:
        out["exif"] = block
    if meta.icc:
        out["icc_profile"] = meta.icc
    if meta.xmp:
        if pil_format == "PNG":
            info = PngImagePlugin.PngInfo()
            info.add_itxt("XML:com.adobe.xmp", meta.xmp.decode("utf-8", "replace"), zip=False)
            out["pnginfo"] = info
        else:
            out["xmp"] = meta.xmp
    return out


def encode_tagged(
    img_u8: np.ndarray, pil_format: str, quality: int | None, args: Mapping[str, Any] | None = None
) -> bytes:
    """An (H, W, 3) RGB or (H, W, 4) RGBA uint8 image coded by Pillow in ``pil_format``, with
    the ``save`` arguments ``args`` (:func:`save_args`). Without ``args``, the same bytes as
    :func:`sain.codecs.encode`. A WebP with alpha keeps the colours under transparent pixels
    (``exact``): they are what the network produced."""
    image = Image.fromarray(np.ascontiguousarray(img_u8))
    params: dict[str, Any] = dict(args or {})
    if quality is not None:
        params["quality"] = quality
    if image.mode == "RGBA" and pil_format == "WEBP":
        params["exact"] = True
    buf = io.BytesIO()
    image.save(buf, format=pil_format, **params)
    return buf.getvalue()
