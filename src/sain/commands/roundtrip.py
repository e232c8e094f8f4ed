"""``sain roundtrip PHOTO -o OUTDIR``: encode + decode, compared with bicubic at the same bytes."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import (
    add_codec,
    add_common,
    add_photo,
    add_runtime,
    check_format,
    print_notes,
    show_progress,
)

DESCRIPTION = """Encode and decode photos, and compare with plain bicubic at the same file size.

For each photo, writes into OUTDIR: the thumbnail (<stem>.jpg), the restored photo
(<stem>.png), the bicubic restoration (<stem>.bicubic.png) and a side-by-side
comparison of a detailed crop (<stem>.compare.png). The bicubic thumbnail is compressed
at the quality whose file is the largest not above the SAIN thumbnail's. Prints PSNR-Y
and SSIM-Y of both against the original (the paper's protocol, scale pixels cropped).
LR bytes are the compressed thumbnail without its ~100 bytes of sain metadata.

examples:
  sain roundtrip photo.png -o out/
  sain roundtrip photo.png -o out/ --quality 30 --format webp
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("photos", nargs="+", metavar="PHOTO", help="image files or folders of images")
    add_common(p)
    add_codec(p)
    add_photo(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the latent sample (default: 0)")
    add_runtime(p)


def run(args: argparse.Namespace) -> int:
    from ..compare import roundtrip_file, roundtrip_outputs
    from ..thumbnail import load_coder
    from .batch import Failure, finish_batch, gather_inputs, inputs_to_do, output_file_target, process_files

    check_format(args.format)
    output_file_target(args, "roundtrip")

    def outputs_of(src: Path) -> list[Path]:
        return list(roundtrip_outputs(src, args.output_dir, args.format).values())

    device, inputs = gather_inputs(args, args.photos, outputs_of)
    model = load_coder(args.model)
    todo = inputs_to_do(args, "roundtrip", inputs, outputs_of)
    jobs: list[tuple[Path, None]] = []
    failures: list[Failure] = []
    seen: set[Path] = set()
    for src in todo:  # refuse existing outputs before any work
        outs = roundtrip_outputs(src, args.output_dir, args.format)
        clash = [p for p in outs.values() if p in seen or (p.exists() and not args.force)]
        if clash:
            why = "exists (use --force to overwrite)" if clash[0] not in seen else "is also written for another input"
            failures.append(Failure(src, f"{clash[0]} {why}"))
        else:
            seen.update(outs.values())
            jobs.append((src, None))

    def report(res: tuple) -> None:
        r, outs = res
        print_notes("roundtrip", r.notes, False)
        h, w = r.original.shape[-2:]
        print(f"{outs['thumbnail'].parent}/{outs['thumbnail'].stem}: {w}x{h}, x{r.scale}, {r.fmt.upper()}")
        print(r.table())
        print(f"comparison: {outs['comparison']}\n")

    failures += process_files(
        jobs,
        lambda src, _: roundtrip_file(
            src,
            args.output_dir,
            model,
            args.format,
            args.quality,
            args.seed,
            args.force,
            args.tile,
            args.precision,
            device,
            args.max_pixels,
            args.background,
            args.frame,
            icc=args.icc,
            keep_metadata=args.keep_metadata,
        ),
        progress=show_progress(args),
        desc="roundtrip",
        report=None if args.quiet else report,
    )
    return finish_batch(args, "roundtrip", failures, inputs)
