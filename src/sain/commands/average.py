"""``sain average MODEL MODEL... --out FILE``: a weight average ("model soup") of several models."""

from __future__ import annotations

import argparse

DESCRIPTION = """Average the weights of two or more models of one architecture and configuration
(checkpoints of one training run, e.g. a bundled model and a later export of its run)
into one weight file of the same size and speed: w = sum_i a_i * w_i. The result keeps the
last model's provenance (training command, data, iterations) and records every input with
its sha256 and coefficient in the metadata field 'averaged_from'. Measure it (sain eval)
before using it: an average is not better by construction.

examples:
  sain average sain-x2-jpeg runs/x2/best.safetensors --out runs/soup/x2.safetensors
  sain average a.safetensors b.safetensors c.safetensors --coefficients 0.2,0.3,0.5 --out soup.safetensors

exit status: 0 written, 2 bad usage or input (nothing written).
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", metavar="MODEL", help="zoo names or weight files (at least two)")
    p.add_argument("--out", required=True, metavar="FILE", help="the weight file to write (.safetensors)")
    p.add_argument(
        "--coefficients",
        metavar="A,B,...",
        help="one non-negative weight per model, normalised to sum 1 (default: equal)",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing output")


def run(args: argparse.Namespace) -> int:
    import json

    from ..averaging import average_weights
    from ..checkpoint import read_metadata

    out = average_weights(args.models, args.out, args.coefficients, force=args.force)
    parts = json.loads(read_metadata(out)["averaged_from"])
    mix = " + ".join(f"{p['coefficient']:g} x {p['model']}" for p in parts)
    print(f"wrote {out}: {mix}")
    return 0
