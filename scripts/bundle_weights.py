#!/usr/bin/env python
"""Copy trained weights into the package (src/sain/weights/) with their measured quality.

    python scripts/bundle_weights.py runs/sain_x2_jpeg_cpu/best.safetensors sain-x2-jpeg \
        --report reports/card/results.json

The weight file keeps the metadata written by `sain train` (command, config, data,
iterations, wall time, hardware) and gains `eval`: for each dataset of the report, the
model's mean Y-PSNR gain over the bicubic baseline across the report's qualities, and
`eval_table`: the model's Y-PSNR per dataset and quality. `sain models` shows them.

Weights that continue the training of the bundled ones carry its history forward:
`--leg TEXT` appends this leg's commands and schedule to the bundled file's
`training_history`, `--leg-hardware TEXT` to its `hardware` (each `; `-separated):

    python scripts/bundle_weights.py runs/x4card/sain_x4_jpeg.safetensors sain-x4-jpeg \
        --report ... --leg "7750-9000: sain train ... (lr 5e-5)" --leg-hardware "steps 7750-9000: ..."
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sain.checkpoint import CheckpointError, load_state_dict_file, model_from_state_dict, save_weights
from sain.zoo import ZOO


def summarise(records: list[dict], model: str) -> tuple[dict, dict]:
    ours = [r for r in records if r["model"] == model]
    base = {(r["dataset"], r["format"], r["quality"]): r["psnr_y"] for r in records if r["model"] == "bicubic"}
    table: dict[str, dict[str, float]] = {}
    gains: dict[str, list[float]] = {}
    for r in ours:
        key = f"{r['dataset']} {r['format']}"
        table.setdefault(key, {})[str(r["quality"])] = round(r["psnr_y"], 3)
        b = base.get((r["dataset"], r["format"], r["quality"]))
        if b is not None:
            gains.setdefault(key, []).append(r["psnr_y"] - b)
    summary = {f"{k} PSNR-Y vs bicubic, dB": round(sum(v) / len(v), 3) for k, v in gains.items()}
    return summary, table


def carried_history(bundled: Path, leg: str | None, leg_hardware: str | None) -> dict[str, str]:
    """The bundled file's ``training_history`` / ``hardware`` with this leg's text appended."""
    if not (leg or leg_hardware):
        return {}
    try:
        _, prev = load_state_dict_file(bundled)
    except CheckpointError:  # nothing bundled yet: the history starts with this leg
        prev = {}
    out = {}
    for key, text in (("training_history", leg), ("hardware", leg_hardware)):
        if text:
            out[key] = "; ".join(x for x in (prev.get(key), text) if x)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", help="a weight file written by `sain train`")
    ap.add_argument("name", choices=sorted(ZOO), help="zoo name to bundle it as")
    ap.add_argument(
        "--report",
        action="append",
        default=[],
        help="results.json of `sain eval --model WEIGHTS --model bicubic ...` (repeatable)",
    )
    ap.add_argument("--report-model", help="the model's name in the report (default: the weight file's stem)")
    ap.add_argument("--leg", help="this leg's training: appended to the bundled file's training_history")
    ap.add_argument("--leg-hardware", help="this leg's hardware: appended to the bundled file's hardware")
    args = ap.parse_args(argv)
    sd, meta = load_state_dict_file(args.weights)
    model = model_from_state_dict(sd, meta, source=args.weights)
    entry = ZOO[args.name]
    if (model.arch, model.scale) != (entry.arch, entry.scale):
        print(
            f"error: {args.weights} is {model.arch} x{model.scale}, but {args.name} is {entry.arch} x{entry.scale}",
            file=sys.stderr,
        )
        return 2
    extra = {k: v for k, v in meta.items() if k not in ("arch", "config", "format")}
    extra.update(carried_history(entry.path, args.leg, args.leg_hardware))
    if args.report:
        records = [r for rep in args.report for r in json.loads(Path(rep).read_text())]
        summary, table = summarise(records, args.report_model or Path(args.weights).stem)
        if not table:
            print(f"error: no records of that model in {', '.join(args.report)}", file=sys.stderr)
            return 2
        extra["eval"] = json.dumps(summary, sort_keys=True)
        extra["eval_table"] = json.dumps(table, sort_keys=True)
    extra["zoo_name"] = args.name
    out = save_weights(model, entry.path, **extra)
    print(f"bundled {args.weights} as {args.name}: {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
