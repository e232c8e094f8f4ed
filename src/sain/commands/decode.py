"""``sain decode THUMB... -o OUTDIR|FILE``: thumbnails -> full-resolution PNGs."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..zoo import DEFAULT_MODEL
from .common import (
    add_common,
    add_runtime,
    print_notes,
    quality,
    show_progress,
)

DESCRIPTION = f"""Restore full-resolution photos (PNG) from thumbnails made by 'sain encode'.

The model and the original size are read from the thumbnail's metadata. For images
from elsewhere (a plain JPEG), give --model and/or --scale (--model defaults to
{DEFAULT_MODEL} then) and optionally --size; the size defaults to the thumbnail's
size times the scale. A thumbnail made with a weight file records its hash, not
its path: decode it with that file as --model. The restored PNG carries what the
thumbnail carries: colour profile, EXIF and XMP (if kept), transparency.

examples:
  sain decode thumbs/photo.jpg -o restored/         # restored/photo.png
  sain decode thumbs/photo.jpg -o photo-restored.png  # one thumbnail: -o may name the file
  sain decode thumbs/ -o restored/ --seed 1
  sain decode other.jpg -o restored/ --model {DEFAULT_MODEL} --scale 2 --size 1001x667

exit status: 0 ok, 1 some thumbnails failed (each named on stderr), 2 bad usage.
"""


def size(text: str) -> tuple[int, int]:
    from ..encoding import parse_size

    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("thumbs", nargs="+", metavar="THUMB", help="thumbnail files or folders of them")
    add_common(
        p,
        output_metavar="OUTDIR|FILE",
        model_default=None,
        output_help="folder for the restored PNGs (created if missing), or, for one thumbnail, the .png file itself",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the latent sample (default: 0)")
    p.add_argument("--scale", type=int, choices=(2, 4, 8), help="expected scale (checked against the model)")
    p.add_argument("--size", type=size, metavar="WxH", help="original size, for thumbnails without metadata")
    p.add_argument(
        "--quality-hint",
        type=quality,
        metavar="Q",
        help="codec quality for a quality-aware model (default: read from a JPEG's quantisation "
        "tables, the quality recorded in a WebP/AVIF thumbnail's metadata, 100 for a lossless PNG; "
        "see 'sain info')",
    )
    add_runtime(p)


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError
    from ..encoding import DecodeResult, decode_file
    from ..thumbnail import load_coder
    from ..zoo import model_name
    from .batch import (
        finish_batch,
        gather_inputs,
        inputs_to_do,
        output_file_target,
        output_path,
        plan_outputs,
        process_files,
    )

    output_file_target(args, "decode", (".png",))

    def outputs_of(src: Path) -> list[Path]:
        return [output_path(args.output_dir, src, "png", args.output_file)]

    device, inputs = gather_inputs(args, args.thumbs, outputs_of)
    model = None
    if args.model is not None:
        model = load_coder(args.model)  # usage error (exit 2) before any work
        if args.scale is not None and args.scale != model.scale:
            raise UsageError(f"model {model_name(model)!r} is x{model.scale}, but --scale {args.scale} was given")
    todo = inputs_to_do(args, "decode", inputs, outputs_of)
    jobs, failures = plan_outputs(todo, args.output_dir, "png", args.force, args.output_file)

    def report(r: DecodeResult) -> None:
        print_notes("decode", r.notes, False)
        print(r.summary())

    failures += process_files(
        jobs,
        lambda src, dst: decode_file(
            src,
            dst,
            model,
            args.seed,
            args.scale,
            args.size,
            args.force,
            args.tile,
            args.precision,
            device,
            args.max_pixels,
            args.quality_hint,
        ),
        progress=show_progress(args),
        desc="decode",
        report=None if args.quiet else report,
    )
    return finish_batch(args, "decode", failures, inputs)
