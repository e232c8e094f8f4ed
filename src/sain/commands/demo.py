"""``sain demo``: SAIN vs bicubic on the bundled sample photo at several qualities."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..zoo import DEFAULT_MODEL
from .common import add_format, add_runtime, apply_runtime, check_format, check_output_dir, qualities

DESCRIPTION = f"""Show what SAIN does, on the bundled sample photo (kodim23 of the Kodak suite).

For each quality, the SAIN thumbnail is compressed at that quality and the bicubic one
at the same number of bytes (or just below); both are restored and scored against the
original (PSNR-Y, the paper's protocol). Prints a table and writes OUTDIR/comparison.png,
one row of detailed crops per quality: original | bicubic | SAIN.

examples:
  sain demo                                 # {DEFAULT_MODEL}, qualities 30,50,70,90, into ./sain-demo
  sain demo --qualities 20,40 --image my_photo.png -o /tmp/demo --force
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"zoo name or weight file (default: {DEFAULT_MODEL})")
    p.add_argument(
        "--qualities",
        type=qualities,
        default=[30, 50, 70, 90],
        metavar="Q,Q,...",
        help="codec qualities (default: 30,50,70,90)",
    )
    add_format(p)
    p.add_argument(
        "-o",
        "--output-dir",
        type=Path,
        default=Path("sain-demo"),
        metavar="OUTDIR",
        help="folder for comparison.png (default: ./sain-demo)",
    )
    p.add_argument("--image", type=Path, help="use this photo instead of the bundled sample")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent sample (default: 0)")
    p.add_argument("--force", action="store_true", help="overwrite an existing comparison.png")
    add_runtime(p)


def run(args: argparse.Namespace) -> int:
    from ..compare import SAMPLE_IMAGE, roundtrip_image
    from ..figures import comparison_image, roundtrip_captions
    from ..imaging import read_image, write_image
    from ..zoo import get_model, model_name

    check_format(args.format)
    check_output_dir(args.output_dir)  # before minutes of model work, not after
    device = apply_runtime(args)
    model = get_model(args.model)
    image = args.image or SAMPLE_IMAGE
    out = args.output_dir / "comparison.png"
    if out.exists() and not args.force:
        raise FileExistsError(f"{out} exists (use --force to overwrite)")
    hr = read_image(image)
    h, w = hr.shape[-2:]
    name = model_name(model)
    label = image.name if args.image else "kodim23 (Kodak)"
    print(f"{name} (x{model.scale}) on {label} ({w}x{h}), {args.format.upper()} ...", file=sys.stderr)
    results = roundtrip_image(
        hr,
        model,
        args.format,
        args.qualities,
        args.seed,
        progress=sys.stderr.isatty(),
        precision=args.precision,
        device=device,
    )
    assert isinstance(results, list)

    print(f"{'quality':>7}{'LR bytes':>10}{'bpp':>7}   {'bicubic PSNR-Y':>14} (q)   {'SAIN PSNR-Y':>11}{'gain':>8}")
    for r in results:
        gain = r.sain.psnr_y - r.bicubic.psnr_y
        print(
            f"{r.quality:>7}{r.sain.bytes:>10,}{8 * r.sain.bytes / (h * w):>7.3f}   "
            f"{r.bicubic.psnr_y:>14.2f} ({r.bicubic.quality:>2})  {r.sain.psnr_y:>11.2f}{gain:>+8.2f}"
        )
    title = f"{label} {w}x{h}: bicubic vs {name} (x{model.scale}) at the same {args.format.upper()} bytes"
    args.output_dir.mkdir(parents=True, exist_ok=True)
    write_image(out, comparison_image([roundtrip_captions(r) for r in results], title), format="png")
    print(f"comparison image: {out}")
    return 0
