"""``sain eval``: the paper's evaluation protocol for any models and image folders."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_refine, add_runtime, apply_runtime

DESCRIPTION = """Evaluate rescaling models the way the SAIN paper does (Yang et al., AAAI 2023).

Each HR image is cropped to a multiple of --modcrop, downscaled by the model, rounded to
8 bits, compressed with the real codec at every --quality, decoded and upscaled (one
latent sample seeded by --seed). PSNR/SSIM on Y and RGB ignore `scale` border pixels.
The report folder gets results.json, results.csv, per_image.csv, results.md (tables laid
out like the paper's) and plots: PSNR-Y against quality and against bits per HR pixel.

Two comparisons: at the same codec quality (the paper's: every method's LR at each
--quality) and, for each network model, at the same bytes: per image and quality, the
bicubic LR re-encoded at the quality whose file is closest to the network's (ties to the
smaller file), in a "same bytes" table of results.md, same_bytes.csv,
same_bytes_per_image.csv and the "same_bytes" object of each network record of
results.json. With --recompress the bytes matched are those the receiver gets (both
files re-encoded at that quality). --no-same-bytes skips it; PNG has none (lossless).

MODEL is a bundled model name (sain-x2-jpeg, ...), a weight file or reference checkpoint,
`bicubic` (MATLAB-style bicubic down and up: the paper's baseline) or `jpeg-hr` (the HR
image compressed directly, over its own quality sweep: the rate-distortion alternative).

examples:
  sain eval --model bicubic --data ../shared/datasets/test/Set5 --modcrop 12 --out reports/bicubic
  sain eval --model sain-x2-jpeg --model bicubic --model jpeg-hr \\
            --data ../shared/datasets/test/Set5 --data ../shared/datasets/test/Set14 --out reports/x2
  sain eval --model runs/x2/weights.safetensors --data DIV2K_valid_HR --format webp --out reports/webp
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="MODEL",
        help="zoo name, weight file, reference checkpoint, 'bicubic' or 'jpeg-hr' (repeatable)",
    )
    p.add_argument(
        "--data",
        action="append",
        required=True,
        metavar="DIR",
        help="folder of HR images, one dataset per folder (repeatable)",
    )
    p.add_argument("--out", required=True, metavar="REPORT_DIR", help="folder for the report")
    p.add_argument(
        "--format", default="jpeg", metavar="FMT", help="codec of the LR: jpeg, webp, avif or png (default: jpeg)"
    )
    p.add_argument(
        "--quality",
        default="30,50,70,80,90",
        metavar="Q,Q,...",
        help="comma-separated codec qualities 1..100 (default: 30,50,70,80,90; PNG: one lossless column)",
    )
    p.add_argument(
        "--hr-quality",
        metavar="Q,Q,...",
        help="quality sweep of jpeg-hr (default: 3,5,10,15,20,30,40,50 at x2, "
        "1,3,5,8,10,15 at x4: HR file sizes that span the LRs')",
    )
    p.add_argument("--scale", type=int, help="rescaling factor (default: the models'; 2 for bicubic alone)")
    p.add_argument(
        "--modcrop",
        type=int,
        metavar="N",
        help="crop each HR to a multiple of N first (default: the scale; the paper's Set5/Set14 numbers use 12)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the latent sample (default: 0)")
    p.add_argument(
        "--recompress",
        type=int,
        metavar="Q",
        help="re-encode every received LR at quality Q before restoring (a second party re-compressing it)",
    )
    p.add_argument(
        "--no-same-bytes",
        action="store_true",
        help="skip the comparison with bicubic at the same bytes (on by default for network models)",
    )
    p.add_argument(
        "--save-images",
        action="store_true",
        help="also write the LR, compressed LR and restored images to REPORT_DIR/images",
    )
    add_runtime(p, precision="fp32")
    add_refine(p, "also evaluate each network with its thumbnail refined at the encoder by N steps, as MODEL+refineN")
    p.add_argument("--force", action="store_true", help="overwrite an existing report in REPORT_DIR")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..evaluate import evaluate, parse_qualities
    from ..reports import write_report

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} is a file, not a folder")
    if (out / "results.json").exists() and not args.force:
        raise FileExistsError(f"{out} already holds a report (results.json); use --force to overwrite it")
    device = apply_runtime(args) or "cpu"
    qualities = parse_qualities(args.quality)
    hr_qualities = parse_qualities(args.hr_quality) if args.hr_quality is not None else None
    result = evaluate(
        args.model,
        args.data,
        fmt=args.format,
        qualities=qualities,
        scale=args.scale,
        seed=args.seed,
        modcrop=args.modcrop,
        save_images_dir=out / "images" if args.save_images else None,
        progress=not args.no_progress,
        hr_qualities=hr_qualities,
        device=device,
        precision=args.precision,
        recompress=args.recompress,
        same_bytes=not args.no_same_bytes,
        refine=args.refine,
    )
    write_report(result.records, result.per_image, out, True, result.same_bytes, result.same_bytes_per_image)
    for r in result.records:
        print(
            f"{r['dataset']:<12} {r['model']:<16} {r['format']} q{r['quality']:<3} "
            f"PSNR-Y {r['psnr_y']:6.2f}  SSIM-Y {r['ssim_y']:.4f}  "
            f"PSNR-RGB {r['psnr_rgb']:6.2f}  bpp {r['bpp']:.3f}"
        )
    for r in result.same_bytes:
        print(
            f"{r['dataset']:<12} {r['model']:<16} {r['format']} q{r['quality']:<3} "
            f"same bytes ({r['bpp']:.3f} bpp): PSNR-Y {r['psnr_y']:6.2f} vs bicubic "
            f"{r['bicubic_psnr_y']:6.2f} at q{r['bicubic_quality']:.1f} ({r['gain_db']:+.2f} dB)"
        )
    print(f"report written to {out}")
    return 0
