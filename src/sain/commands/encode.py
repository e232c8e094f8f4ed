"""``sain encode PHOTO... -o OUTDIR|FILE``: photos -> small JPEG/WebP/AVIF thumbnails."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..zoo import DEFAULT_MODEL
from .common import (
    add_codec,
    add_common,
    add_photo,
    add_refine,
    add_runtime,
    check_format,
    print_notes,
    show_progress,
)

DESCRIPTION = f"""Downscale photos with a SAIN model into small JPEG / WebP / AVIF files.

The thumbnails are ordinary image files any viewer opens; 'sain decode' restores the
full-resolution photo from them. The model name, scale and original size are stored in
the file's metadata (EXIF ImageDescription), so odd sizes come back exactly.
Photos larger than about 4 megapixels are processed in tiles (see --tile).

The thumbnail carries the photo's colour profile (--icc convert-srgb converts to sRGB
instead); EXIF and XMP are stripped unless --keep-metadata. WebP and AVIF thumbnails
keep transparency; JPEG composites it onto --background.

examples:
  sain encode photo.png -o thumbs/                  # thumbs/photo.jpg, {DEFAULT_MODEL}, quality 75
  sain encode photo.png -o small.webp               # one photo: -o may name the file (format from it)
  sain encode shots/*.png -o thumbs/ --quality 50
  sain encode photo.png -o thumbs/ --format webp --force

exit status: 0 ok, 1 some photos failed (each named on stderr), 2 bad usage.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("photos", nargs="+", metavar="PHOTO", help="image files or folders of images")
    add_common(
        p,
        output_metavar="OUTDIR|FILE",
        output_help="folder for the thumbnails (created if missing), or, for one photo, the thumbnail "
        "file itself (.jpg / .webp / .avif: the format follows)",
    )
    add_codec(p, format_default=None, format_help=", or the suffix of -o FILE")
    add_photo(p)
    add_refine(
        p,
        "refine each thumbnail at the encoder by N gradient steps so that the decoder restores more "
        "(Set14 with 40 steps: +0.16 dB on average over QF 30-90, every image gaining; "
        "slow: a decoder forward and backward pass per step)",
    )
    add_runtime(p)


#: ``-o FILE`` suffixes of encode, and the format each one means.
FILE_FORMATS = {".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp", ".avif": "avif"}


def resolve_format(args: argparse.Namespace) -> str:
    """``--format``, else the format of ``-o FILE``'s suffix, else JPEG; a usage error when
    the two disagree (``-o thumb.webp --format jpeg``)."""
    from ..cli import UsageError
    from .batch import output_file_target

    suffix = output_file_target(args, "encode", tuple(FILE_FORMATS))
    implied = FILE_FORMATS.get(suffix) if suffix else None
    if args.format is not None and implied is not None and args.format != implied:
        raise UsageError(
            f"-o {args.output_file} is a {implied.upper()} file name, but --format {args.format} was given"
        )
    return args.format or implied or "jpeg"


def run(args: argparse.Namespace) -> int:
    from ..encoding import SUFFIXES, EncodeResult, encode_file
    from ..thumbnail import load_coder
    from .batch import finish_batch, gather_inputs, inputs_to_do, output_path, plan_outputs, process_files

    args.format = resolve_format(args)
    check_format(args.format)
    if args.refine:
        from ..cli import UsageError
        from ..refine import check_refine_format

        try:
            check_refine_format(args.format)
        except ValueError as e:
            raise UsageError(f"--{e}") from None

    def outputs_of(src: Path) -> list[Path]:
        return [output_path(args.output_dir, src, SUFFIXES[args.format], args.output_file)]

    device, inputs = gather_inputs(args, args.photos, outputs_of)
    model = load_coder(args.model)  # usage error (exit 2) before any work
    todo = inputs_to_do(args, "encode", inputs, outputs_of)
    jobs, failures = plan_outputs(todo, args.output_dir, SUFFIXES[args.format], args.force, args.output_file)

    def report(r: EncodeResult) -> None:
        print_notes("encode", r.notes, False)
        print(r.summary())

    failures += process_files(
        jobs,
        lambda src, dst: encode_file(
            src,
            dst,
            model,
            args.format,
            args.quality,
            args.force,
            args.tile,
            args.precision,
            device,
            args.max_pixels,
            args.background,
            args.frame,
            icc=args.icc,
            keep_metadata=args.keep_metadata,
            refine=args.refine,
            progress=show_progress(args),
        ),
        progress=show_progress(args),
        desc="encode",
        report=None if args.quiet else report,
    )
    return finish_batch(args, "encode", failures, inputs)
