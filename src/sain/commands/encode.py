"""``sain encode PHOTO... -o OUTDIR``: photos -> small JPEG/WebP/AVIF thumbnails."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..zoo import DEFAULT_MODEL

DESCRIPTION = f"""Downscale photos with a SAIN model into small JPEG / WebP / AVIF files.

The thumbnails are ordinary image files any viewer opens; 'sain decode' restores the
full-resolution photo from them. The model name, scale and original size are stored in
the file's metadata (EXIF ImageDescription), so odd sizes come back exactly.
Photos larger than about 4 megapixels are processed in tiles (see --tile).

examples:
  sain encode photo.png -o thumbs/                  # thumbs/photo.jpg, {DEFAULT_MODEL}, quality 75
  sain encode shots/*.png -o thumbs/ --quality 50
  sain encode photo.png -o thumbs/ --format webp --force

exit status: 0 ok, 1 some photos failed (each named on stderr), 2 bad usage.
"""


def quality(text: str) -> int:
    """argparse type: an integer codec quality in 1..100."""
    try:
        q = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"quality must be an integer in 1..100, got {text!r}") from None
    if not 1 <= q <= 100:
        raise argparse.ArgumentTypeError(f"quality must be in 1..100, got {q}")
    return q


def tile(text: str) -> str | int:
    """argparse type: 'auto', 'off', 'on' or a tile size in LR pixels."""
    if text in ("auto", "off", "on"):
        return text
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--tile must be auto, on, off or a number of pixels, got {text!r}") \
            from None
    if n < 16:
        raise argparse.ArgumentTypeError(f"--tile must be at least 16 pixels, got {n}")
    return n


def add_common(p: argparse.ArgumentParser, model_default: str | None = DEFAULT_MODEL) -> None:
    """Options shared by encode, decode and roundtrip."""
    p.add_argument("-o", "--output-dir", required=True, type=Path, metavar="OUTDIR",
                   help="folder for the results (created if missing)")
    help_model = "zoo name (see 'sain models') or weight file"
    p.add_argument("--model", default=model_default,
                   help=help_model + (f" (default: {model_default})" if model_default else ""))
    p.add_argument("--tile", type=tile, default="auto", metavar="auto|on|off|N",
                   help="process in overlapping tiles of N LR pixels (auto: above ~1 megapixel at LR; "
                        "identical results)")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no per-file lines")


def add_codec(p: argparse.ArgumentParser) -> None:
    from ..api import ENCODE_FORMATS

    p.add_argument("--format", default="jpeg", type=str.lower, choices=ENCODE_FORMATS,
                   help="thumbnail format (default: jpeg)")
    p.add_argument("--quality", type=quality, default=75, help="codec quality 1..100 (default: 75)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("photos", nargs="+", metavar="PHOTO", help="image files or folders of images")
    add_common(p)
    add_codec(p)


def check_format(fmt: str) -> None:
    from ..api import check_format as _check_format
    from ..cli import UsageError

    try:
        _check_format(fmt)
    except ValueError as e:
        raise UsageError(str(e)) from None


def finish(command: str, failures: list, total: int) -> int:
    """Print each failure on stderr; exit status 1 if any."""
    for f in failures:
        print(f"sain {command}: {f}", file=sys.stderr)
    if failures and total > 1:
        print(f"sain {command}: {len(failures)} of {total} inputs failed", file=sys.stderr)
    return 1 if failures else 0


def show_progress(args: argparse.Namespace) -> bool:
    return not args.quiet and sys.stderr.isatty()


def run(args: argparse.Namespace) -> int:
    from .. import api

    check_format(args.format)
    model = api.get_model(args.model)  # usage error (exit 2) before any work
    inputs = api.expand_inputs(args.photos)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    jobs, failures = api.plan_outputs(inputs, args.output_dir, api.SUFFIXES[args.format], args.force)
    failures += api.process_files(
        jobs, lambda src, dst: api.encode_file(src, dst, model, args.format, args.quality, args.force, args.tile),
        progress=show_progress(args), desc="encode",
        report=None if args.quiet else (lambda r: print(r.summary())))
    return finish("encode", sorted(failures, key=lambda f: inputs.index(f.path)), len(inputs))
