"""Reports of an evaluation (:func:`sain.evaluate.evaluate`): JSON, CSV, Markdown tables, plots.

    EvalResult.records   (one per dataset x model x quality) ─> results.json, results.csv,
                                                                 results.md, rd_*.png, psnr_vs_quality_*.png
    EvalResult.per_image (one per image x model x quality)   ─> per_image.csv

The record layout (:data:`RECORD_COLUMNS`, :data:`IMAGE_COLUMNS`, :data:`METRICS`) is
defined here and filled by :mod:`sain.evaluate`.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path

from .pipeline import HRCodecMethod

__all__ = [
    "IMAGE_COLUMNS",
    "METRICS",
    "RECORD_COLUMNS",
    "REPORT_FILES",
    "markdown_report",
    "safe_name",
    "write_report",
]

log = logging.getLogger("sain.evaluate")

HR_CODEC = HRCodecMethod.kind

#: Per-image and per-dataset metric columns (``None`` where a metric does not apply,
#: e.g. the LR metrics of ``jpeg-hr``; infinite PSNR where images are identical, e.g.
#: the sent LR of ``bicubic`` against the bicubic LR).
METRICS: tuple[str, ...] = (
    "psnr_y",
    "ssim_y",
    "psnr_rgb",
    "ssim_rgb",
    "lr_psnr_y",
    "lr_ssim_y",
    "lr_psnr_rgb",
    "lr_ssim_rgb",
    "received_psnr_y",
    "received_ssim_y",
    "bytes",
    "bpp",
)

RECORD_COLUMNS = ("dataset", "model", "kind", "format", "quality", "scale", "modcrop", "seed", "images", *METRICS)
IMAGE_COLUMNS = (
    "dataset",
    "image",
    "height",
    "width",
    "model",
    "kind",
    "format",
    "quality",
    "scale",
    "modcrop",
    "seed",
    *METRICS,
)
#: The files :func:`write_report` always writes (the plots come after them).
REPORT_FILES = ("results.json", "results.csv", "per_image.csv", "results.md")


def safe_name(text: str) -> str:
    """``text`` as a file name: runs of other characters than ``A-Za-z0-9._+-`` become ``_``."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_") or "x"


def _json_value(v):
    """Strict JSON: non-finite floats (identical images' PSNR) become ``None``."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _write_csv(path: Path, rows: list[dict], columns: Sequence[str]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})


def _fmt_pair(p: float | None, s: float | None) -> str:
    if p is None or s is None:
        return "-"
    ps = "inf" if math.isinf(p) else f"{p:.2f}"
    return f"{ps}/{s:.4f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def markdown_report(records: list[dict]) -> str:
    """``results.md``: per dataset, methods x qualities tables (PSNR/SSIM, sizes, LR fidelity)."""
    lines = ["# Evaluation report", ""]
    if records:
        r0 = records[0]
        lines += [
            f"Protocol (the SAIN paper's): x{r0['scale']}, {r0['format'].upper()} "
            f"(Pillow defaults), HR cropped to a multiple of {r0['modcrop']}, "
            f"{r0['scale']} border pixels ignored, latent seed {r0['seed']}. "
            "Cells are PSNR (dB) / SSIM averaged over the images; Y = BT.601 luma. "
            "bpp = bits of the compressed file per HR pixel.",
            "",
        ]
    for dataset in dict.fromkeys(r["dataset"] for r in records):
        recs = [r for r in records if r["dataset"] == dataset]
        resc = [r for r in recs if r["kind"] != "jpeg-hr"]
        hrc = [r for r in recs if r["kind"] == "jpeg-hr"]
        lines += [f"## {dataset} ({recs[0]['images']} images)", ""]
        if resc:
            qs = sorted({r["quality"] for r in resc})
            names = list(dict.fromkeys(r["model"] for r in resc))
            cell = {(r["model"], r["quality"]): r for r in resc}
            header = ["Method"] + [f"QF{q}" for q in qs]

            def rows_of(fn, cell=cell, qs=qs, names=names):
                return [[nm] + [fn(cell[(nm, q)]) if (nm, q) in cell else "-" for q in qs] for nm in names]

            lines += ["Y channel (PSNR/SSIM):", ""]
            lines += _table(header, rows_of(lambda r: _fmt_pair(r["psnr_y"], r["ssim_y"]))) + [""]
            lines += ["RGB (PSNR/SSIM):", ""]
            lines += _table(header, rows_of(lambda r: _fmt_pair(r["psnr_rgb"], r["ssim_rgb"]))) + [""]
            lines += ["Compressed LR size, bits per HR pixel (mean bytes):", ""]
            lines += _table(header, rows_of(lambda r: f"{r['bpp']:.3f} ({r['bytes']:.0f} B)")) + [""]
            lines += ["Received (compressed) LR vs bicubic LR, Y (PSNR/SSIM):", ""]
            lines += _table(header, rows_of(lambda r: _fmt_pair(r["received_psnr_y"], r["received_ssim_y"]))) + [""]
            lr_rows = [
                [
                    nm,
                    _fmt_pair(cell[(nm, qs[0])]["lr_psnr_y"], cell[(nm, qs[0])]["lr_ssim_y"]),
                    _fmt_pair(cell[(nm, qs[0])]["lr_psnr_rgb"], cell[(nm, qs[0])]["lr_ssim_rgb"]),
                ]
                for nm in names
                if (nm, qs[0]) in cell
            ]
            lines += ["Sent LR (8-bit, before the codec) vs bicubic LR (PSNR/SSIM):", ""]
            lines += _table(["Method", "Y", "RGB"], lr_rows) + [""]
        if hrc:
            hrc = sorted(hrc, key=lambda r: r["quality"])
            lines += [f"{HR_CODEC}: the full-resolution image compressed directly (its own qualities):", ""]
            header = ["", *(f"QF{r['quality']}" for r in hrc)]
            lines += _table(
                header,
                [
                    ["bpp", *(f"{r['bpp']:.3f}" for r in hrc)],
                    ["Y", *(_fmt_pair(r["psnr_y"], r["ssim_y"]) for r in hrc)],
                    ["RGB", *(_fmt_pair(r["psnr_rgb"], r["ssim_rgb"]) for r in hrc)],
                ],
            ) + [""]
    return "\n".join(lines)


def _plots(records: list[dict], out: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no plots (pip install 'sain[plot]')")
        return []
    written = []
    for dataset in dict.fromkeys(r["dataset"] for r in records):
        recs = [r for r in records if r["dataset"] == dataset]
        r0 = recs[0]
        title = f"{dataset}, x{r0['scale']}, {r0['format'].upper()}"
        names = list(dict.fromkeys(r["model"] for r in recs))
        for kind in ("quality", "rd"):
            fig, ax = plt.subplots(figsize=(6, 4.2), dpi=110)
            drawn = 0
            for nm in names:
                mine = [r for r in recs if r["model"] == nm]
                if kind == "quality":
                    if mine[0]["kind"] == "jpeg-hr":
                        continue  # its qualities are not comparable to the LR's
                    mine.sort(key=lambda r: r["quality"])
                    xs = [r["quality"] for r in mine]
                else:
                    mine.sort(key=lambda r: r["bpp"])
                    xs = [r["bpp"] for r in mine]
                style = "--" if mine[0]["kind"] == "jpeg-hr" else "-"
                ax.plot(xs, [r["psnr_y"] for r in mine], style, marker="o", ms=4, label=nm)
                drawn += 1
            if not drawn:
                plt.close(fig)
                continue
            if kind == "quality":
                ax.set_xlabel("codec quality of the LR")
                fname = f"psnr_vs_quality_{safe_name(dataset)}.png"
            else:
                ax.set_xlabel("bits per HR pixel")
                fname = f"rd_{safe_name(dataset)}.png"
            ax.set_ylabel("PSNR-Y (dB)")
            ax.set_title(title)
            ax.grid(True, alpha=0.3)
            ax.legend()
            fig.tight_layout()
            fig.savefig(out / fname)
            plt.close(fig)
            written.append(out / fname)
    return written


def write_report(
    records: list[dict], per_image_rows: list[dict], out_dir: str | Path, overwrite: bool = False
) -> list[Path]:
    """Write the report of an evaluation into ``out_dir`` (created if needed).

    Files: ``results.json`` (the list of per-dataset records; non-finite values as
    ``null``), ``results.csv`` (the same), ``per_image.csv``, ``results.md`` (per
    dataset: rows methods, columns quality factors, cells PSNR/SSIM on Y and RGB, file
    sizes, LR fidelity; ``jpeg-hr`` in its own table), ``psnr_vs_quality_<dataset>.png``
    (PSNR-Y against quality, one line per model, ``jpeg-hr`` left out) and
    ``rd_<dataset>.png`` (PSNR-Y against bits per HR pixel, every model). The plots need
    matplotlib and are skipped with a warning without it.

    Raises:
        FileExistsError: ``out_dir`` already holds a ``results.json`` and ``overwrite`` is false.

    Returns:
        The paths written.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"report folder {out} is a file")
    if (out / "results.json").exists() and not overwrite:
        raise FileExistsError(f"{out} already holds a report (results.json); use --force to overwrite it")
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "results.json", "w") as f:
        json.dump([{k: _json_value(v) for k, v in r.items()} for r in records], f, indent=1)
        f.write("\n")
    _write_csv(out / "results.csv", records, RECORD_COLUMNS)
    _write_csv(out / "per_image.csv", per_image_rows, IMAGE_COLUMNS)
    (out / "results.md").write_text(markdown_report(records) + "\n")
    return [out / f for f in REPORT_FILES] + _plots(records, out)
