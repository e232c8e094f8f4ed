r"""Train on a lent GPU machine for a fixed number of minutes and bring the state back.

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

Several runs share one GPU (an H200 is far from busy with one of these small models):
``run --job sain_x2_webp_cpu=train_state/sain_x2_webp_cpu.safetensors --job
sain_x2_jpeg_qf_cpu=train_state/sain_x2_jpeg_qf_cpu.safetensors --minutes 8`` trains both
side by side and, since their states together need more than the 8 returned files, puts
every packed state and log into one tar archive cut into parts of at most ``--shard-mb``
(``device_states.tar.part00``, ...); ``python scripts/device_train.py unpack PARTS...
--to train_state/`` puts them back together here.

Per-job options follow an ``@``: ``--job
sain_x2_jpeg_qf_ft_cpu=train_state/sain_x2_jpeg_qf_ft_cpu.safetensors@batch=8,patch=96,iters=config``
keeps that run's CPU budget (batch 8 of 96 px, its config's 2,400 steps) while the other jobs
train at the paper's batch; any ``SECTION.KEY=VALUE`` is a ``--set`` for that job only.

On the device machine nothing is installed: its image's ``python3`` has torch, numpy,
Pillow, safetensors and tqdm, so ``export PYTHONPATH=$PWD/src`` is the whole set-up.

What travels is the working tree, at most 64 MiB, and this repository's tracked files are
far more (train_state/ alone is over 200 MB, the bundled weights ~50 MB). Before a call, here,
take them out of the index (the files stay on disk), ignore them, and carry only the states
the jobs resume; afterwards put the index back:

    git rm -r -q --cached train_state src/sain/weights
    printf '/train_state/\n/src/sain/weights/\n' >> .git/info/exclude
    # run(command=..., carry=["device_pack", "train_state/X.safetensors", ...])
    git reset -q && sed -i '/^\/train_state\/$/d; /^\/src\/sain\/weights\/$/d' .git/info/exclude

The same holds for what comes back (8 files, 64 MiB a call): a several-job run writes its
archive parts to a folder of the repository (``--out runs/devout``), the call copies the
first four to ``$OUT``, and a second call made at once, while the machine is still warm,
copies the rest. The first H200 run (2026-12-04) did exactly this: one 7.5-minute call
training ``sain_x4_jpeg`` from scratch (16 x 128 px, 1,030 steps) beside
``sain_x2_jpeg_qf_cpu`` resumed at its CPU batch (1434 -> 3160), 82 MB returned in two calls.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def prepare(args: argparse.Namespace) -> int:
    from PIL import Image

    from sain.imaging import list_images
    from sain.train.data import split_holdout

    src, out = Path(args.data), Path(args.out) / "train"
    # the configs validate on `val_holdout` training images: keep those out of the crops and
    # carry them whole, so that a device run validates on the very images a CPU run does
    paths, held_out = split_holdout(list_images(src), args.holdout)
    if not paths:
        raise SystemExit(f"no images in {src}")
    for d in (out, out.parent / "val"):
        if d.exists():
            shutil.rmtree(d)
    out.mkdir(parents=True)
    (out.parent / "val").mkdir()
    for p in held_out:
        shutil.copy(p, out.parent / "val" / p.name)
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
        dst = out / f"{n:05d}.webp"  # lossless WebP: a third smaller than PNG, so more crops fit
        img.crop((x, y, x + c, y + c)).save(dst, lossless=True, quality=80, method=4)
        total += dst.stat().st_size
        n += 1
    print(f"{n} crops of {args.crop} px, {total / 1e6:.1f} MB in {out}")
    return 0


#: Per-job options that replace a ``run`` flag; any other ``KEY=VALUE`` is passed as ``--set``.
JOB_FLAGS = ("iters", "batch", "patch", "workers")

Job = tuple[str, str | None, dict[str, str]]


def parse_job(text: str) -> Job:
    """``CONFIG[=STATE][@KEY=VALUE,...]`` -> ``(config, state or None, options)``.

    Options replace ``--iters`` / ``--batch`` / ``--patch`` / ``--workers`` for this job
    (``iters=config``: the config's own schedule end), any other key is a ``--set`` of
    ``sain train`` (``optim.lr=1e-4``)."""
    head, _, opts_text = text.partition("@")
    config, _, state = head.partition("=")
    opts: dict[str, str] = {}
    for item in filter(None, opts_text.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key or not value:
            raise SystemExit(f"job option {item!r} of {text!r} is not KEY=VALUE")
        if key not in JOB_FLAGS and "." not in key:
            raise SystemExit(f"job option {key!r}: one of {', '.join(JOB_FLAGS)} or a config SECTION.KEY")
        opts[key] = value
    if not config:
        raise SystemExit(f"job {text!r} names no config")
    return config, state or None, opts


def _jobs(args: argparse.Namespace) -> list[Job]:
    """``[(config, state or None, options)]`` from ``--config/--state`` and every ``--job``."""
    jobs: list[Job] = [(args.config, args.state, {})] if args.config else []
    jobs += [parse_job(j) for j in args.job or []]
    if not jobs:
        raise SystemExit("give --config (and --state) or at least one --job CONFIG[=STATE]")
    names = [_name(c, st) for c, st, _ in jobs]
    if len(set(names)) != len(names):
        raise SystemExit(f"two jobs would write the same state: {names}")
    return jobs


def _name(config: str, state: str | None) -> str:
    return Path(state).stem if state else Path(config).stem


def _command(
    args: argparse.Namespace, config: str, state: str | None, runs: Path, opts: dict | None = None
) -> list[str]:
    opts = opts or {}
    flags = {k: str(opts.get(k, getattr(args, k))) for k in JOB_FLAGS}
    cmd = [sys.executable, "-m", "sain", "train", config, "--out", str(runs), "--device", args.device]
    cmd += ["--data", args.data]
    for k in JOB_FLAGS:
        if not (k == "iters" and flags[k] == "config"):
            cmd += [f"--{k}", flags[k]]
    val = Path(args.data).parent / "val"  # prepare's held-out images, else 8 of the crops
    cmd += ["--no-progress", "--set", "run.amp=auto"]
    cmd += ["--set", f"data.val={val}"] if val.is_dir() else ["--set", "data.val_holdout=8"]
    cmd += [a for k, v in opts.items() if k not in JOB_FLAGS for a in ("--set", f"{k}={v}")]
    if state:
        cmd += ["--resume-from", state]
    return cmd


def run(args: argparse.Namespace) -> int:
    from sain.train.portable import pack

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = _jobs(args)
    procs = []
    for config, state, opts in jobs:
        runs = ROOT / "runs" / "device" / _name(config, state)
        if runs.exists():
            shutil.rmtree(runs)
        cmd = _command(args, config, state, runs, opts)
        print(" ".join(cmd), flush=True)
        procs.append((config, state, runs, subprocess.Popen(cmd, start_new_session=False)))
    deadline = time.time() + args.minutes * 60
    while any(p.poll() is None for *_, p in procs) and time.time() < deadline:
        time.sleep(2)
    for *_, proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # the trainer writes its checkpoint, then exits 130
    for *_, proc in procs:
        proc.wait(timeout=180)
    # one job: its shards and log straight into OUT; several: one archive in parts (8 files at most)
    stage = out if len(jobs) == 1 else out / "stage"
    stage.mkdir(parents=True, exist_ok=True)
    failed = 0
    for config, state, runs, proc in procs:
        ckpt, name = runs / "checkpoint.pt", _name(config, state)
        if not ckpt.is_file():
            print(f"{name}: no checkpoint written (exit {proc.returncode})", file=sys.stderr)
            failed += 1
            continue
        shard = int(args.shard_mb * 1e6) if len(jobs) == 1 else None
        pack(ckpt, stage / f"{name}.safetensors", shard_bytes=shard)
        if (runs / "log.csv").is_file():
            shutil.copy(runs / "log.csv", stage / f"{name}.log.csv")
        if len(jobs) > 1 and (runs / "best" / "model.safetensors").is_file():
            shutil.copy(runs / "best" / "model.safetensors", stage / f"{name}.best.safetensors")
    if stage != out:
        archive = out / "device_states.tar"
        with tarfile.open(archive, "w") as tar:
            for f in sorted(stage.iterdir(), key=_archive_order):
                tar.add(f, arcname=f.name)
        shutil.rmtree(stage)
        if _cut(archive, int(args.shard_mb * 1e6)) > 8:
            print("warning: more than 8 parts; the device machine returns only 8 files", file=sys.stderr)
    print(f"packed into {out}: {sorted(p.name for p in out.iterdir())}")
    return 1 if failed else 0


def _archive_order(path: Path) -> tuple[int, str]:
    """Logs, then the best exports, then the packed states: when the parts come back in two
    calls and only the first arrives, the files that lie whole in it are the small, useful ones."""
    rank = 0 if path.name.endswith(".csv") else 1 if path.name.endswith(".best.safetensors") else 2
    return rank, path.name


def _cut(path: Path, part_bytes: int) -> int:
    """``path`` into ``path.part00``, ``path.part01``, ... of at most ``part_bytes`` each; their number."""
    with open(path, "rb") as f:
        i = 0
        while chunk := f.read(part_bytes):
            path.with_name(f"{path.name}.part{i:02d}").write_bytes(chunk)
            i += 1
    path.unlink()
    return i


def unpack(args: argparse.Namespace) -> int:
    """The parts of a several-job run back into one archive, extracted into ``--to``."""
    parts = sorted(Path(p) for p in args.parts)
    to = Path(args.to)
    to.mkdir(parents=True, exist_ok=True)
    archive = to / "device_states.tar"
    with open(archive, "wb") as f:
        for p in parts:
            f.write(p.read_bytes())
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        if any(Path(n).name != n for n in names):
            raise SystemExit(f"refusing an archive with paths in it: {names}")
        tar.extractall(to, filter="data")
    archive.unlink()
    print(f"into {to}: {names}")
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
    p.add_argument("--holdout", type=int, default=10, help="the configs' data.val_holdout")
    p.set_defaults(fn=prepare)
    r = sub.add_parser("run", help="train for --minutes on the device, pack the state into --out")
    r.add_argument("--config", help="a config name or file (see sain train --help)")
    r.add_argument("--state", help="a packed state to resume (train_state/...); none: a fresh run")
    r.add_argument(
        "--job",
        action="append",
        metavar="CONFIG[=STATE][@KEY=VALUE,...]",
        help="one more run side by side on the device (repeatable); options: iters, batch, patch, workers "
        "(iters=config: the config's own end) or a config SECTION.KEY for this job only",
    )
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
    u = sub.add_parser("unpack", help="the archive parts of a several-job run back into packed states")
    u.add_argument("parts", nargs="+")
    u.add_argument("--to", default=str(ROOT / "train_state"))
    u.set_defaults(fn=unpack)
    args = ap.parse_args(argv)
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
