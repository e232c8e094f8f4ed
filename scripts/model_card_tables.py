#!/usr/bin/env python
"""Print the evaluation tables of MODELS.md from `sain eval` report folders.

    python scripts/model_card_tables.py reports/card_set5_set14 reports/card_b100 \
        reports/card_b100_irn reports/card_kodak24 reports/card_kodak24_irn

Reads each folder's results.json, merges them, and prints for every dataset (in the order
first seen) one Markdown table: Y-PSNR / SSIM per method and quality with the mean PSNR,
then the gain of the model (``--model``) over ``bicubic`` and over ``--baseline``.
Also prints the quality-bar line of each dataset: the smallest per-QF gain over bicubic
and the mean gain.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def load(folders: list[str]) -> list[dict]:
    records: list[dict] = []
    seen: set[tuple] = set()
    for folder in folders:
        path = Path(folder) / "results.json"
        if not path.is_file():
            raise SystemExit(f"model_card_tables: error: no results.json in {folder}")
        for r in json.loads(path.read_text()):
            key = (r["dataset"], r["model"], r["format"], r["quality"])
            if key in seen:
                continue  # the same cell from two reports (e.g. bicubic twice): keep the first
            seen.add(key)
            records.append(r)
    return records


def tables(records: list[dict], model: str, baseline: str) -> str:
    datasets = list(dict.fromkeys(r["dataset"] for r in records))
    out = [
        "| set | method | " + " | ".join(f"QF{q}" for q in qualities(records)) + " | mean |",
        "|---|---|" + "---|" * (len(qualities(records)) + 1),
    ]
    bars = []
    for ds in datasets:
        rows = [r for r in records if r["dataset"] == ds]
        qs = sorted({r["quality"] for r in rows})
        cell = {(r["model"], r["quality"]): r for r in rows}
        methods = [m for m in (model, baseline, "bicubic") if any(k[0] == m for k in cell)]
        for m in methods:
            vals = [cell[(m, q)] for q in qs if (m, q) in cell]
            if len(vals) != len(qs):
                continue
            mean = sum(v["psnr_y"] for v in vals) / len(vals)
            out.append(
                f"| {ds} | {m} | "
                + " | ".join(f"{v['psnr_y']:.2f}/{v['ssim_y']:.4f}" for v in vals)
                + f" | {mean:.2f} |"
            )
        for other, label in (("bicubic", "bicubic"), (baseline, "IRN" if "irn" in baseline else baseline)):
            if all((model, q) in cell and (other, q) in cell for q in qs):
                gains = [cell[(model, q)]["psnr_y"] - cell[(other, q)]["psnr_y"] for q in qs]
                mean = sum(gains) / len(gains)
                name = "SAIN" if "sain" in model else model
                out.append(
                    f"| {ds} | {name} - {label} (dB) | " + " | ".join(f"{g:+.2f}" for g in gains) + f" | {mean:+.2f} |"
                )
                if other == "bicubic":
                    bars.append(
                        f"{ds}: "
                        + " / ".join(f"{g:+.2f}" for g in gains)
                        + f" dB at QF {' / '.join(map(str, qs))} (mean {mean:+.2f}, min {min(gains):+.2f})"
                    )
    return "\n".join(out) + "\n\n" + "\n".join(bars) + "\n"


def qualities(records: list[dict]) -> list[int]:
    return sorted({r["quality"] for r in records})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reports", nargs="+", help="report folders written by `sain eval --out`")
    ap.add_argument("--model", default="sain-x2-jpeg")
    ap.add_argument("--baseline", default="irn-x2")
    args = ap.parse_args(argv)
    sys.stdout.write(tables(load(args.reports), args.model, args.baseline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
