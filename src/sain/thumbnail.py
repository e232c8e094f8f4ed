"""The thumbnail container: what a thumbnail records for its decoder, in the file itself.

A thumbnail is an ordinary JPEG / WebP / AVIF file that any viewer opens. What the
decoder needs is stored in the file's EXIF ImageDescription tag (0x010E), the same
mechanism for all three formats::

    sain:v1 {"height": 512, "model": "sain-x2-jpeg", "quality": 75, "scale": 2, "width": 768}

``sain:v1`` is the format version of this metadata (see CHANGELOG.md); a grayscale photo
adds ``"gray": true``, and ``"quality": Q`` records the codec quality the thumbnail was
written at (every format; absent in thumbnails written before it was added, which read as
before). For a WebP or AVIF thumbnail that is the only record of its quality; a JPEG's
quantisation tables say it again, and they win when a second party re-compressed the file
(:func:`sain.decoding.choose_quality`). With ``--keep-metadata`` the same EXIF block holds
the photo's own tags (:mod:`sain.imaging.metadata`). The ``model`` is a zoo name, or
``sha256:`` and the first 16 hex digits of the SHA-256 of the weight file it was made with
(never a path: :func:`model_id`). It is untrusted input: the decoder honours a zoo name only, and a
file model must be passed explicitly (:func:`load_coder` loads it; :mod:`sain.decoding`
compares its hash with the recorded one).
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from .imaging.metadata import copy_exif
from .models import RescalingModel
from .zoo import ZOO, file_sha256, get_model, model_name, resolve_model

__all__ = ["FILE_MODEL_PREFIX", "META_PREFIX", "META_TAG", "ThumbnailInfo", "load_coder", "model_id", "read_info"]

#: EXIF ImageDescription, where the metadata lives.
META_TAG = 0x010E
#: What the metadata text starts with (its format version).
META_PREFIX = "sain:v1 "
#: How the metadata names a model loaded from a weight file: this and 16 hex digits of its SHA-256.
FILE_MODEL_PREFIX = "sha256:"

PathLike = str | os.PathLike


@dataclass(frozen=True)
class ThumbnailInfo:
    """What a thumbnail's metadata records: the model, its scale, the original size,
    whether the photo was grayscale (then ``"gray": true``; absent for colour photos), and
    the codec quality it was written at (``"quality"``; ``None`` when not recorded).

    ``quality`` says how this file was written, not which photo it restores: it is left out
    of ``==`` (records of the same photo, model and size are equal whatever quality each
    file was written at)."""

    model: str
    scale: int
    width: int
    height: int
    gray: bool = False
    quality: int | None = field(default=None, compare=False)

    def to_text(self) -> str:
        d: dict[str, Any] = {"model": self.model, "scale": self.scale, "width": self.width, "height": self.height}
        if self.gray:
            d["gray"] = True
        if self.quality is not None:
            d["quality"] = self.quality
        return META_PREFIX + json.dumps(d, sort_keys=True, separators=(", ", ": "))

    @classmethod
    def from_text(cls, text: Any) -> ThumbnailInfo | None:
        """Parse an ImageDescription; ``None`` when it is not sain metadata.

        Raises:
            ValueError: the text claims to be sain metadata but is malformed.
        """
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        if not isinstance(text, str) or not text.startswith(META_PREFIX):
            return None
        try:
            d = json.loads(text[len(META_PREFIX) :])
        except ValueError:
            d = None
        problem = _metadata_problem(d)
        if problem:
            raise ValueError(f"corrupt sain metadata ({problem}): {text[:80]!r}")
        assert isinstance(d, dict)
        info = cls(
            model=d["model"],
            scale=d["scale"],
            width=d["width"],
            height=d["height"],
            gray=d.get("gray", False),
            quality=d.get("quality"),
        )
        return info

    def exif(self, base: Image.Exif | None = None) -> Image.Exif:
        """The EXIF block to embed: a copy of ``base`` (the photo's own tags, kept with
        ``--keep-metadata``; default none) with the metadata in ImageDescription."""
        exif = (copy_exif(base) if base is not None else None) or Image.Exif()
        exif[META_TAG] = self.to_text()
        return exif


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 24 else r[:21] + "..."


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _metadata_problem(d: Any) -> str | None:
    """What is wrong with a parsed sain:v1 record, in a few words; ``None`` when it is sound."""
    if not isinstance(d, dict):
        return "not a JSON object"
    missing = [k for k in ("model", "scale", "width", "height") if k not in d]
    if missing:
        return f"no {', '.join(missing)}"
    if not isinstance(d["model"], str) or not d["model"]:
        return "model is not a name"
    if not _is_int(d["scale"]) or d["scale"] not in (2, 4, 8):
        return f"scale {_short(d['scale'])}, not 2, 4 or 8"
    for k in ("width", "height"):
        if not _is_int(d[k]) or not 1 <= d[k] <= 1 << 31:
            return f"{k} {_short(d[k])}, not a size in pixels"
    if not isinstance(d.get("gray", False), bool):
        return f"gray {_short(d['gray'])}, not true or false"
    q = d.get("quality")
    if not (q is None or _is_quality(q)):
        return f"quality {_short(q)}, not 1..100"
    return None


def _is_quality(q: Any) -> bool:
    """A recorded codec quality: an int (not a bool) in 1..100."""
    return isinstance(q, int) and not isinstance(q, bool) and 1 <= q <= 100


def model_id(model: RescalingModel) -> str:
    """How a thumbnail names ``model``: ``sha256:<16 hex>`` of the weight file it was loaded
    from by :func:`load_coder` (never the path), else its name (a zoo name for a zoo model)."""
    digest = getattr(model, "weights_sha256", None)
    return f"{FILE_MODEL_PREFIX}{digest[:16]}" if digest else model_name(model)


def load_coder(model: str | os.PathLike | RescalingModel | None) -> RescalingModel:
    """:func:`sain.zoo.get_model`, and for a weight file its SHA-256 kept on the model
    (``weights_sha256``), which :func:`model_id` records; a file that is a bundled model's
    is named by its zoo name."""
    m = get_model(model)
    if isinstance(model, RescalingModel) or str(model) in ZOO or model is None:
        return m
    _, path, _ = resolve_model(model)
    digest = file_sha256(path)
    bundled = [e.name for e in ZOO.values() if e.sha256 == digest]
    if bundled:
        m.name = bundled[0]  # type: ignore[assignment]
    else:
        m.weights_sha256 = digest  # type: ignore[assignment]
    return m


def read_bytes(data_or_path: bytes | PathLike) -> tuple[bytes, str]:
    """``(file bytes, name for messages)``; OSError with a one-line message naming the file."""
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
    data, name = read_bytes(data_or_path)
    return info_from_bytes(data, name)


def info_from_bytes(data: bytes, name: str) -> ThumbnailInfo | None:
    """:func:`read_info` of a file already read (``name`` for the messages)."""
    from .imaging.io import ImageReadError, open_image

    try:
        with open_image(io.BytesIO(data)) as img:
            text = img.getexif().get(META_TAG)
    except ImageReadError as e:
        raise ValueError(str(e).replace("'<bytes>'", f"'{name}'", 1)) from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise ValueError(f"cannot read image '{name}': {' '.join(str(e).split()) or type(e).__name__}") from None
    try:
        return ThumbnailInfo.from_text(text)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None
