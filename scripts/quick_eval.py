#!/usr/bin/env python
"""A quick screen of candidate x2 weights before a full model card (`make -j2 model-card-x2`).

    python scripts/quick_eval.py sain-x2-jpeg runs/x/best.safetensors runs/soup.safetensors

Mean Y-PSNR (``scale`` border pixels cropped, one latent sample with seed 0, exactly as
``sain eval``) at JPEG QF 30 / 70 / 90 on Set14 (modcrop 12) and on the first ``--b100``
images of B100 (sorted by name; default 25), one line per model. Screening numbers only:
a bundle decision takes the full card (five qualities, every image).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from sain.codecs import codec_roundtrip
from sain.eval_inputs import modcrop
from sain.imaging import list_images, read_image
from sain.metrics import psnr
from sain.pipeline import ModelMethod
from sain.zoo import get_model


def screen(spec: str, sets: dict[str, tuple[list[Path], int]], qualities: list[int]) -> dict[str, list[float]]:
    m = ModelMethod(get_model(spec).eval())
    out = {}
    with torch.no_grad():
        for s, (files, crop) in sets.items():
            tot = [0.0] * len(qualities)
            for f in files:
                hr = modcrop(read_image(f), crop).unsqueeze(0)
                lr = m.downscale(hr)
                for i, q in enumerate(qualities):
                    r = codec_roundtrip(lr, "jpeg", q)[0]
                    tot[i] += psnr(m.upscale(r, 0, quality=q)[0].clamp(0, 1), hr[0], m.scale, y_channel=True)
            out[s] = [t / len(files) for t in tot]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="zoo names or weight files")
    ap.add_argument("--testsets", default="../shared/datasets/test")
    ap.add_argument("--b100", type=int, default=25, help="how many B100 images (default 25)")
    ap.add_argument("--quality", default="30,70,90")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    root = Path(args.testsets)
    qualities = [int(q) for q in args.quality.split(",")]
    sets = {"Set14": (list_images(root / "Set14"), 12), "B100": (list_images(root / "B100")[: args.b100], 2)}
    for spec in args.models:
        res = screen(spec, sets, qualities)
        cols = " | ".join(
            f"{s} {' '.join(f'{v:.3f}' for v in vals)} mean {sum(vals) / len(vals):.3f}" for s, vals in res.items()
        )
        print(f"{spec} | {cols}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
