"""``sain info FILE...``: what a thumbnail (or any image) says about itself."""

from __future__ import annotations

import argparse
import json
from typing import Any

DESCRIPTION = """Show what an image file says about itself: its format, size, mode and bytes;
whether it is a sain thumbnail and what its sain:v1 metadata records (model, scale,
original size, grayscale, the codec quality it was written at); for a JPEG, the libjpeg
quality its quantisation tables say (exact for libjpeg's tables, else the nearest, with a
confidence); and which quality 'sain decode' would give a quality-aware model, and why:
a JPEG's tables win over the recorded quality (a second party may have re-compressed
the file), WebP and AVIF have no tables and use the recorded one.

examples:
  sain info thumbs/photo.jpg
  sain info thumbs/ --json            # one JSON object per file

exit status: 0 all files read, 1 some could not be read (each named on stderr), 2 bad usage.
"""

#: Width of the labels of the text output.
_LABEL = 18


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help="image files or folders of them")
    p.add_argument("--json", action="store_true", help="print one JSON object per file instead of text")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _sain_lines(d: dict[str, Any]) -> list[tuple[str, str]]:
    rec = d["sain"]
    if rec is None and d["sain_error"]:
        return [("sain thumbnail", f"no: {d['sain_error']} (decode refuses it)")]
    if rec is None:
        return [("sain thumbnail", "no (not a sain thumbnail: no sain:v1 metadata)")]
    aware = d["quality_aware"]
    q = rec["quality"]
    return [
        ("sain thumbnail", "yes (sain:v1)"),
        ("model", rec["model"]),
        ("scale", f"x{rec['scale']}"),
        ("original size", f"{rec['width']}x{rec['height']}"),
        ("grayscale", _yes(rec["gray"])),
        ("recorded quality", "not recorded (an older thumbnail)" if q is None else str(q)),
        ("quality-aware", "unknown (not a zoo model)" if aware is None else _yes(aware)),
    ]


def format_info(d: dict[str, Any]) -> list[str]:
    """The text block of one :func:`sain.inspection.inspect_thumbnail` result."""
    rows = [
        ("format", str(d["format"])),
        ("size", f"{d['width']}x{d['height']} pixels"),
        ("mode", str(d["mode"])),
        ("file size", f"{d['bytes']:,} bytes"),
        ("alpha", _yes(d["alpha"])),
        ("ICC profile", _yes(d["icc_profile"])),
        *_sain_lines(d),
    ]
    t = d["jpeg_quality"]
    if t is not None:
        how = "exactly libjpeg's standard tables" if t["exact"] else "nearest libjpeg tables"
        rows.append(("JPEG tables", f"quality {t['quality']} ({how}, confidence {t['confidence']:.2f})"))
    dq = d["decode_quality"]
    rows.append(("decode quality", f"{dq['quality'] if dq['quality'] is not None else 'none'}: {dq['reason']}"))
    rows += [("note", n) for n in d["notes"]]
    return [d["file"], *(f"  {label + ':':<{_LABEL}}{value}" for label, value in rows)]


def run(args: argparse.Namespace) -> int:
    from ..inspection import inspect_thumbnail
    from .batch import Failure, expand_inputs, one_line
    from .common import finish, require_inputs

    inputs = expand_inputs(args.files)
    require_inputs(inputs, args.files)
    failures = []
    first = True
    for path in inputs:
        try:
            d = inspect_thumbnail(path)
        except (OSError, ValueError) as e:
            failures.append(Failure(path, one_line(e)))
            continue
        if args.json:
            print(json.dumps(d, sort_keys=True))
        else:
            print(("" if first else "\n") + "\n".join(format_info(d)), flush=True)
        first = False
    return finish("info", failures, len(inputs))
