"""Train on a lent GPU machine for a fixed number of minutes and bring the state back.

The device machine receives only the repository (at most 64 MiB, ``../shared`` stays
behind) and returns at most 8 files of 16 MiB from ``$OUT``. So:

1. here, once: ``python scripts/device_train.py prepare`` writes ``device_pack/train/``
   (ignored by git, carried with ``carry=["device_pack"]``): random 256x256 crops of
   ``../shared/datasets/train`` as PNG, at most ``--max-mb`` (default 40) MB;
2. there, in one call: ``python scripts/device_train.py run --config sain_x4_jpeg_cpu
   --state train_state/sain_x4_jpeg_cpu.safetensors --minutes 8 --out $OUT`` resumes the
   packed state (or starts fresh without ``--state``) at the paper's batch (16 x 128 px) on
   CUDA with AMP, stops after ``--minutes`` with a checkpoint (SIGTERM: the trainer saves
   first), and packs the state into ``$OUT`` in shards of at most 15 MB
   (``NAME.safetensors``, ``NAME.shard1.safetensors``, ...) with the run's ``log.csv``;
3. here: copy the returned files to ``train_state/`` and resume from them as usual.

The install step on the device machine is ``pip install torch==2.13.0 -e .`` (or whatever
its page says is there); the script itself only needs the package.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def prepare(args: argparse.Namespace) -> int:
    from PIL import Image

    from sain.imaging import list_images

    src, out = Path(args.data), Path(args.out) / "train"
    paths = list_images(src)
    if not paths:
        raise SystemExit(f"no images in {src}")
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    total, n = 0, 0
    while total < args.max_mb * 1e6:
        p = rng.choice(paths)
        img = Image.open(p).convert("RGB")
        w, h = img.size
        c = args.crop
        if w < c or h < c:
            continue
        x, y = rng.randrange(0, w - c + 1), rng.randrange(0, h - c + 1)
        dst = out / f"{n:05d}.png"
        img.crop((x, y, x + c, y + c)).save(dst, optimize=True)
        total += dst.stat().st_size
        n += 1
    print(f"{n} crops of {args.crop} px, {total / 1e6:.1f} MB in {out}")
    return 0


def run(args: argparse.Namespace) -> int:
    from sain.train.portable import pack

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = ROOT / "runs" / "device"
    if runs.exists():
        shutil.rmtree(runs)
    cmd = [
        sys.executable,
        "-m",
        "sain",
        "train",
        args.config,
        "--out",
        str(runs),
        "--device",
        args.device,
        "--data",
        args.data,
        "--iters",
        str(args.iters),
        "--batch",
        str(args.batch),
        "--patch",
        str(args.patch),
        "--workers",
        str(args.workers),
        "--no-progress",
        "--set",
        "run.amp=auto",
        "--set",
        "data.val_holdout=8",
    ]
    if args.state:
        cmd += ["--resume-from", args.state]
    print(" ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, start_new_session=False)
    deadline = time.time() + args.minutes * 60
    while proc.poll() is None and time.time() < deadline:
        time.sleep(2)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # the trainer writes its checkpoint, then exits 130
        proc.wait(timeout=120)
    ckpt = runs / "checkpoint.pt"
    if not ckpt.is_file():
        print(f"no checkpoint written (exit {proc.returncode})", file=sys.stderr)
        return 1
    name = Path(args.state).stem if args.state else Path(args.config).stem
    pack(ckpt, out / f"{name}.safetensors", shard_bytes=int(args.shard_mb * 1e6))
    if (runs / "log.csv").is_file():
        shutil.copy(runs / "log.csv", out / f"{name}.log.csv")
    print(f"packed into {out}: {sorted(p.name for p in out.iterdir())}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="crops of the training set that fit the device machine's transfer")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "train"))
    p.add_argument("--out", default=str(ROOT / "device_pack"))
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--max-mb", type=float, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(fn=prepare)
    r = sub.add_parser("run", help="train for --minutes on the device, pack the state into --out")
    r.add_argument("--config", required=True, help="a config name or file (see sain train --help)")
    r.add_argument("--state", help="a packed state to resume (train_state/...); none: a fresh run")
    r.add_argument("--minutes", type=float, required=True)
    r.add_argument("--out", default=os.environ.get("OUT", "out"))
    r.add_argument("--data", default=str(ROOT / "device_pack" / "train"))
    r.add_argument("--device", default="cuda")
    r.add_argument("--iters", type=int, default=10_000_000, help="schedule end (default: run until --minutes)")
    r.add_argument("--batch", type=int, default=16)
    r.add_argument("--patch", type=int, default=128)
    r.add_argument("--workers", type=int, default=4)
    r.add_argument("--shard-mb", type=float, default=15)
    r.set_defaults(fn=run)
    args = ap.parse_args(argv)
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
