"""Python API of the ``sain`` tool: photos to compressed thumbnails and back.

    photo ─read_image─> HR ─reflect-pad to a multiple of s─> model.downscale ─8 bits─> LR
    LR ─JPEG/WebP/AVIF + metadata (model, scale, original size)─> thumbnail file

    thumbnail ─decode─> LR ─model.upscale (seeded GMM latent)─> HR ─crop to the original size─> PNG

This module gathers the public names of the modules that do the work, one job each:

* :mod:`sain.thumbnail`: the metadata a thumbnail carries (:class:`ThumbnailInfo`, :func:`read_info`);
* :mod:`sain.inspection`: what a file says about itself, its quality included (:func:`inspect_thumbnail`);
* :mod:`sain.encoding`: :func:`encode_image` / :func:`encode_file`, :func:`decode_image` / :func:`decode_file`;
* :mod:`sain.compare`: SAIN against bicubic at the same bytes (:func:`roundtrip_image`,
  :func:`match_quality`);
* :mod:`sain.figures`: the comparison figures (:func:`comparison_image`);
* :mod:`sain.averaging`: one model from several checkpoints' weights (:func:`average_weights`);
* :mod:`sain.zoo`: models by name (:func:`get_model`), :mod:`sain.pipeline`: the tiling policy;
* :mod:`sain.commands.batch`: many files with one failure each (:func:`process_files`).

Quick start::

    >>> from sain import api                                     # doctest: +SKIP
    >>> api.encode_file("photo.png", "thumbs/photo.jpg", quality=75)
    >>> api.decode_file("thumbs/photo.jpg", "restored/photo.png")
    >>> hr = api.decode_image("thumbs/photo.jpg")                 # (3, H, W) in [0, 1]
    >>> api.inspect_thumbnail("thumbs/photo.jpg")["sain"]["quality"]
    75

Errors on bad input are ``ValueError`` (``ImageReadError``, ``CheckpointError``) or
``OSError`` with a one-line message naming the file.
"""

from __future__ import annotations

import os

from .averaging import average_models, average_weights
from .codecs import decode, encode  # noqa: F401  (sain.api.encode / decode, as before the split)
from .commands.batch import Failure, expand_inputs, plan_outputs, process_files
from .compare import (
    SAMPLE_IMAGE,
    Restored,
    RoundtripResult,
    match_quality,
    roundtrip_file,
    roundtrip_image,
    roundtrip_outputs,
)
from .encoding import (
    AUTO_TILE_PIXELS,
    DEFAULT_TILE,
    ENCODE_FORMATS,
    SUFFIXES,
    DecodeResult,
    EncodeResult,
    check_format,
    decode_file,
    decode_image,
    encode_file,
    encode_image,
    pad_to_multiple,
    parse_size,
)
from .figures import comparison_image, detail_window, roundtrip_captions
from .inspection import inspect_thumbnail
from .thumbnail import ThumbnailInfo, read_info
from .zoo import get_model, model_name

__all__ = [
    "average_models",
    "average_weights",
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
    "inspect_thumbnail",
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

#: Paths as the functions take them.
PathLike = str | os.PathLike
