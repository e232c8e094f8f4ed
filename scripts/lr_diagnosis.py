#!/usr/bin/env python
"""Per image: what a model's downscaler does with the LR, and where the restoration loses.

    python scripts/lr_diagnosis.py --model sain-x2-jpeg --model runs/x/model.safetensors \
        --data ../shared/datasets/test/Set14 --quality 70

For each image (cropped to a multiple of --modcrop) and model, one row:

* ``clip%``: LR values outside [0, 1] before the 8-bit rounding (the thumbnail cannot hold
  them: the clamp discards them);
* ``lr_y``: PSNR-Y of the 8-bit LR against the MATLAB-bicubic LR (what the thumbnail looks like);
* ``d_vs_r``: PSNR-Y between the differentiable JPEG and the real codec on that LR (how well
  the training's surrogate imitates the codec);
* ``via_d`` / ``via_r`` / ``via_png``: restored PSNR-Y (``scale`` border pixels cropped) from
  the LR through the surrogate, the real JPEG, and losslessly: a loss that shows in
  ``via_png`` too is the network's, not the codec's.

Seed 0 for the latent, as ``sain eval``. Prints a table and the means; ``--csv FILE`` writes
the rows.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import torch

from sain.codecs import codec_roundtrip, diff_jpeg, quantize_u8
from sain.eval_inputs import modcrop
from sain.imaging import list_images, read_image
from sain.metrics import psnr
from sain.pipeline import BicubicMethod
from sain.zoo import ZOO, get_model

COLUMNS = ("clip%", "lr_y", "d_vs_r", "via_d", "via_r", "via_png")


def _y(a: torch.Tensor, b: torch.Tensor, crop: int) -> float:
    return psnr(a.clamp(0, 1), b.clamp(0, 1), crop, y_channel=True)


def diagnose(model, hr: torch.Tensor, quality: int, seed: int = 0) -> dict[str, float]:
    scale = model.scale
    x = hr.unsqueeze(0)
    ref = BicubicMethod(scale).downscale(x)
    with torch.no_grad():
        lr = model.downscale(x)
        q = quantize_u8(lr)
        d = diff_jpeg(q, quality)
        r = codec_roundtrip(q, "jpeg", quality)[0]
        out = {
            "clip%": 100.0 * ((lr < -0.5 / 255) | (lr > 1 + 0.5 / 255)).float().mean().item(),
            "lr_y": _y(q[0], ref[0], 0),
            "d_vs_r": _y(d[0], r[0], 0),
        }
        for key, v in (("via_d", d), ("via_r", r), ("via_png", q)):
            xh = model.upscale(v, torch.Generator().manual_seed(seed))
            out[key] = _y(xh[0], hr, scale)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True, help="zoo name or weight file (repeatable)")
    ap.add_argument("--data", required=True, help="folder of HR images")
    ap.add_argument("--quality", type=int, default=70, help="JPEG quality (default 70)")
    ap.add_argument("--modcrop", type=int, default=12, help="crop to a multiple of N (default 12, Set14's protocol)")
    ap.add_argument("--only", help="comma-separated image stems to keep")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--csv", help="write the rows here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    # a file is named by its folder and stem (runs/x/model.safetensors -> x/model)
    models = [
        (spec if spec in ZOO else f"{Path(spec).parent.name}/{Path(spec).stem}", get_model(spec)) for spec in args.model
    ]
    files = list_images(Path(args.data))
    if args.only:
        keep = set(args.only.split(","))
        files = [f for f in files if f.stem in keep]
    rows = []
    print(f"{'image':14s} {'model':24s} " + " ".join(f"{c:>8s}" for c in COLUMNS))
    for f in files:
        hr = modcrop(read_image(f), args.modcrop)
        for name, m in models:
            row = {"image": f.stem, "model": name, **diagnose(m, hr, args.quality)}
            rows.append(row)
            print(f"{f.stem:14s} {name:24s} " + " ".join(f"{row[c]:8.2f}" for c in COLUMNS), flush=True)
    for name, _ in models:
        mine = [r for r in rows if r["model"] == name]
        means = {c: sum(r[c] for r in mine) / len(mine) for c in COLUMNS}
        print(f"{'mean':14s} {name:24s} " + " ".join(f"{means[c]:8.2f}" for c in COLUMNS))
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=["image", "model", *COLUMNS])
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
