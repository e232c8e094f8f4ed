"""``sain train CONFIG``: train SAIN or IRN with the recipe of a config file."""

from __future__ import annotations

import argparse
import shlex
import textwrap

from ..train.presets import list_configs, resolve_config

DESCRIPTION = """Train SAIN (or the IRN baseline) with the paper's recipe.

CONFIG is a TOML file or the name of a config shipped with sain:
{configs}
The flags below override it, and any other value can be set with --set section.key=value
(e.g. --set optim.lr=1e-4 --set loss.codec=webp). Relative paths in a config are relative
to the current directory.

examples:
  sain train sain_x2_jpeg_cpu --data ../shared/datasets/train --out runs/x2
  sain train configs/sain_x2_jpeg.toml --data ../shared/datasets/train --out runs/x2
  sain train configs/sain_x2_jpeg.toml --out runs/x2 --resume
  sain train sain_x2_jpeg_cpu --out runs/x2 --threads 2 --procs 2
  torchrun --nproc-per-node 2 -m sain train configs/sain_x2_jpeg.toml --out runs/ddp
""".format(configs=textwrap.fill(", ".join(list_configs()), 88, initial_indent="  ", subsequent_indent="  "))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="TOML config file or packaged config name (e.g. sain_x2_jpeg_cpu)")
    p.add_argument("--data", help="folder of training images (recursive)")
    p.add_argument("--val-data", help="folder of validation images (default: hold out some training images)")
    p.add_argument("--out", help="run folder for checkpoints, logs and weights")
    p.add_argument("--iters", type=int, help="total training iterations")
    p.add_argument("--batch", type=int, help="batch size (of the whole step with --procs; per process under torchrun)")
    p.add_argument("--patch", type=int, help="HR crop size in pixels")
    p.add_argument("--device", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    p.add_argument("--workers", type=int, help="data loader worker processes (per training process)")
    p.add_argument(
        "--procs",
        type=int,
        help="local processes sharing each step, each with threads/procs threads and batch/procs samples "
        "(faster on a small CPU: --procs 2 on 2 cores; see sain.train.launch)",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument(
        "--resume-from", metavar="STATE", help="start the run in a fresh --out from a packed state (see 'sain pack')"
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override any config value (repeatable)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


FLAGS = ("data", "val_data", "out", "iters", "batch", "patch", "device", "threads", "workers", "procs")


def command_line(args: argparse.Namespace) -> str:
    """The ``sain train ...`` command these arguments stand for (stored in the weights' metadata).

    Rebuilt from the parsed arguments rather than read from ``sys.argv``, which belongs to
    the caller when ``sain.cli.main([...])`` is called from Python (a test, a notebook).
    """
    parts = ["sain", "train", args.config]
    for flag in FLAGS:
        value = getattr(args, flag)
        if value is not None:
            parts += [f"--{flag.replace('_', '-')}", str(value)]
    for ov in args.overrides:
        parts += ["--set", ov]
    if args.resume:
        parts.append("--resume")
    if args.resume_from:
        parts += ["--resume-from", args.resume_from]
    return " ".join(shlex.quote(p) for p in parts)


def run(args: argparse.Namespace) -> int:
    from ..train import load_config, train

    cfg = load_config(resolve_config(args.config), args.overrides)
    flag_map = {
        "data": ("data", "train"),
        "val_data": ("data", "val"),
        "out": ("run", "out"),
        "iters": ("optim", "iters"),
        "batch": ("data", "batch"),
        "patch": ("data", "patch"),
        "device": ("run", "device"),
        "threads": ("run", "threads"),
        "workers": ("data", "workers"),
        "procs": ("run", "procs"),
    }
    for flag, (section, key) in flag_map.items():
        value = getattr(args, flag)
        if value is not None:
            setattr(getattr(cfg, section), key, value)
    cfg.validate()
    if args.resume and args.resume_from:
        raise ValueError("use either --resume or --resume-from, not both")
    path = train(
        cfg, resume=args.resume, progress=not args.no_progress, command=command_line(args), resume_from=args.resume_from
    )
    print(f"weights written to {path}")
    return 0
