"""``sain models``: the bundled and known models."""

from __future__ import annotations

import argparse
import json
from typing import Any

DESCRIPTION = """List the models of the zoo: scale, codec it was trained for, size of the weight
file, measured quality (from the weight file's "eval" metadata) and whether the weights
are bundled with this installation. Use a name with --model in the other commands.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON (one object per model) instead of a table")


def eval_summary(ev: object, limit: int = 3) -> str:
    """A short text for the "eval" metadata: the first few numeric entries, PSNRs first."""
    if not isinstance(ev, dict) or not ev:
        return "-" if not ev else str(ev)[:40]
    flat: list[tuple[str, float]] = []

    def walk(d: dict, prefix: str) -> None:
        for k, v in d.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict):
                walk(v, key + " ")
            elif isinstance(v, int | float) and not isinstance(v, bool):
                flat.append((key, float(v)))

    walk(ev, "")
    flat.sort(key=lambda kv: "psnr" not in kv[0].lower())
    return ", ".join(f"{k} {v:.4g}" for k, v in flat[:limit]) or "-"


def gains(ev: object) -> str:
    """Every test set of the "eval" metadata, e.g. ``Set5 +2.70, Set14 +1.98`` (dB)."""
    if not isinstance(ev, dict) or not ev:
        return "-"
    parts = []
    for k, v in sorted(ev.items()):
        if isinstance(v, int | float) and not isinstance(v, bool) and "vs bicubic" in k:
            parts.append(f"{k.split()[0]} {v:+.2f}")
    return ", ".join(parts) or eval_summary(ev)


def run(args: argparse.Namespace) -> int:
    from ..zoo import DEFAULT_MODEL, list_models, model_info

    rows: list[dict[str, Any]] = []
    for e in list_models():
        info = model_info(e)
        rows.append(
            {
                "name": e.name,
                "arch": e.arch,
                "scale": e.scale,
                "codec": e.codec,
                "size_mb": round(e.path.stat().st_size / 1e6, 1) if e.available else None,
                "eval": info.get("eval"),
                "bundled": e.available,
                "default": e.name == DEFAULT_MODEL,
                "description": e.description,
            }
        )
    if args.json:
        for r in rows:
            print(json.dumps(r, sort_keys=True))
        return 0
    bundled = [r for r in rows if r["bundled"]]
    gain = "mean Y-PSNR gain over bicubic (dB, at the same quality of the model's codec)"
    head = f"{'name':<16}{'scale':>6}  {'codec':<6}{'size':>9}  {gain}"
    print(head)
    for r in bundled:
        name = r["name"] + (" *" if r["default"] else "")
        print(f"{name:<16}{'x' + str(r['scale']):>6}  {r['codec']:<6}{r['size_mb']:>6.1f} MB  {gains(r['eval'])}")
    missing = [r["name"] for r in rows if not r["bundled"]]
    print("\n* default model. Any weight file or reference checkpoint also works: --model PATH.")
    if missing:
        print(f"Known but not bundled in this version (still training): {', '.join(missing)}.")
    print(machine_line())
    return 0


def machine_line() -> str:
    """What ``--precision auto`` does on this machine, and why (its CPU, from
    :func:`sain.precision.cpu_description`)."""
    import torch

    from ..precision import cpu_description, resolve_precision

    cpu = cpu_description()
    auto = resolve_precision("auto", "cpu")
    how = "restores in bf16 (thumbnails stay fp32)" if auto == "bf16" else "runs in fp32"
    gpu = " A CUDA GPU is present: --device cuda." if torch.cuda.is_available() else ""
    return f"This machine: {cpu['summary']}. --precision auto {how} here.{gpu}"
