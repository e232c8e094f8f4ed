"""``sain pack CHECKPOINT OUT``: a run's checkpoint.pt as a compact, portable state file."""

from __future__ import annotations

import argparse

DESCRIPTION = """Pack a training checkpoint (runs/NAME/checkpoint.pt) into one safetensors file
with the model, the Adam moments (bfloat16), the schedule, the RNG state and the step, so
the run can continue in another session or on another machine:

  sain pack runs/x2/checkpoint.pt train_state/x2.safetensors
  sain train configs/sain_x2_jpeg_cpu.toml --out runs/x2 --resume-from train_state/x2.safetensors
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a run's checkpoint.pt")
    p.add_argument("out", help="the packed state file to write (.safetensors)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument(
        "--shard-mb",
        type=float,
        metavar="MB",
        help="split into files of at most MB megabytes (OUT, OUT-stem.shard1.safetensors, ...)",
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..train.portable import pack

    if Path(args.out).exists() and not args.force:
        raise FileExistsError(f"{args.out} exists (use --force to overwrite)")
    if args.shard_mb is not None and args.shard_mb <= 0:
        raise ValueError(f"--shard-mb must be > 0, got {args.shard_mb}")
    shard = int(args.shard_mb * 1e6) if args.shard_mb else None
    out = pack(args.checkpoint, args.out, shard_bytes=shard)
    print(f"packed {args.checkpoint} -> {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0
