"""Reports of an evaluation (:func:`sain.evaluate.evaluate`): JSON, CSV, Markdown tables, plots.

    EvalResult.records   (one per dataset x model x quality) ─> results.json, results.csv,
                                                                 results.md, rd_*.png, psnr_vs_quality_*.png
    EvalResult.per_image (one per image x model x quality)   ─> per_image.csv
    EvalResult.same_bytes (one per dataset x network x quality) ─> same_bytes.csv, results.md,
                                                                 "same_bytes" of results.json
    EvalResult.same_bytes_per_image                          ─> same_bytes_per_image.csv

The record layout (:data:`RECORD_COLUMNS`, :data:`IMAGE_COLUMNS`, :data:`METRICS`,
:data:`SAME_BYTES_RECORD_COLUMNS`) is defined here and filled by :mod:`sain.evaluate`
and :mod:`sain.same_bytes`; :func:`aggregate` turns per-image rows into per-dataset means.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .pipeline import HRCodecMethod

__all__ = [
    "IMAGE_COLUMNS",
    "METRICS",
    "RECORD_COLUMNS",
    "REPORT_FILES",
    "SAME_BYTES_COLUMNS",
    "SAME_BYTES_FILES",
    "SAME_BYTES_IMAGE_COLUMNS",
    "SAME_BYTES_RECORD_COLUMNS",
    "aggregate",
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
#: The files it writes when there is a same-bytes comparison (a network was evaluated).
SAME_BYTES_FILES = ("same_bytes.csv", "same_bytes_per_image.csv")

#: Per-image columns of the same-bytes comparison (:class:`sain.same_bytes.BicubicAtBytes`).
SAME_BYTES_COLUMNS: tuple[str, ...] = (
    "bytes",
    "bpp",
    "psnr_y",
    "ssim_y",
    "bicubic_quality",
    "bicubic_bytes",
    "bicubic_bpp",
    "bicubic_psnr_y",
    "bicubic_ssim_y",
    "gain_db",
)

_HEAD = ("dataset", "model", "kind", "format", "quality", "scale", "modcrop", "seed", "recompress")
#: Columns of ``same_bytes.csv``: the network's mean bytes (the receiver's), bpp, PSNR-Y /
#: SSIM-Y; bicubic's at the matched quality (the mean quality), the gain (network minus
#: bicubic, dB) and how many images bicubic could not match (every one of its files
#: smaller, quality 100 too; every one larger, quality 1 too).
SAME_BYTES_RECORD_COLUMNS = (*_HEAD, "images", *SAME_BYTES_COLUMNS, "unmatched_high", "unmatched_low")
SAME_BYTES_IMAGE_COLUMNS = (*_HEAD[:2], "image", "height", "width", *_HEAD[2:], *SAME_BYTES_COLUMNS, "reach")


def _mean(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    if any(math.isinf(v) for v in vals):
        return float("inf")
    return float(np.mean(vals))


def aggregate(rows: list[dict], columns: Sequence[str] = METRICS) -> list[dict]:
    """Per-dataset means of per-image ``rows``: one record per dataset x model x quality
    (in the order first seen, qualities ascending) with the rows' dataset, model, kind,
    format, quality, scale, modcrop, seed and recompress, ``images`` and the mean of each
    of ``columns`` (``None`` ignored; infinite when one is)."""
    records = []
    for dataset, model in dict.fromkeys((r["dataset"], r["model"]) for r in rows):
        mine = [r for r in rows if r["dataset"] == dataset and r["model"] == model]
        for q in sorted({r["quality"] for r in mine}):
            sel = [r for r in mine if r["quality"] == q]
            rec = {k: sel[0].get(k) for k in _HEAD}
            rec["images"] = len(sel)
            rec.update({k: _mean([r[k] for r in sel]) for k in columns})
            records.append(rec)
    return records


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


def _size(r: dict, prefix: str = "") -> str:
    return f"{r[prefix + 'bpp']:.3f} ({r[prefix + 'bytes']:.0f} B)"


def _same_bytes_table(same_bytes: Sequence[dict]) -> list[str]:
    """The same-bytes table of one dataset: rows network x quality and each network's mean,
    then a note for each cell where bicubic could not reach the network's size."""
    r0 = same_bytes[0]
    again = r0.get("recompress")
    lines = [
        f"Y channel PSNR (dB), at the same bytes: per image, bicubic's LR re-encoded at the {r0['format'].upper()} "
        "quality whose file is closest to the network's (ties to the smaller file). "
        + (
            f"The bytes are those the receiver gets, after the re-encode at QF{again} (bicubic's too). "
            if again
            else ""
        )
        + "Means over the images; gain = network minus bicubic.",
        "",
    ]
    header = ["Model", "QF", "bpp (mean bytes)", "PSNR-Y", "bicubic QF (mean)", "bicubic bpp (bytes)"]
    header += ["bicubic PSNR-Y", "gain (dB)"]
    rows, notes = [], []
    for nm in dict.fromkeys(r["model"] for r in same_bytes):
        mine = sorted((r for r in same_bytes if r["model"] == nm), key=lambda r: r["quality"])
        for r in mine:
            cells = [_size(r), f"{r['psnr_y']:.2f}", f"{r['bicubic_quality']:.1f}", _size(r, "bicubic_")]
            rows.append([nm, str(r["quality"]), *cells, f"{r['bicubic_psnr_y']:.2f}", f"{r['gain_db']:+.2f}"])
            for key, what in (
                ("unmatched_high", "every bicubic file is smaller, quality 100 too (it cannot reach that size)"),
                ("unmatched_low", "every bicubic file is larger, quality 1 too (it cannot go that small)"),
            ):
                if r[key]:
                    notes.append(f"{nm} QF{r['quality']}: on {r[key]} of {r['images']} images {what}.")
        if len(mine) > 1:
            mean = [float(np.mean([r[k] for r in mine])) for k in ("psnr_y", "bicubic_psnr_y", "gain_db")]
            rows.append([nm, "mean", "", f"{mean[0]:.2f}", "", "", f"{mean[1]:.2f}", f"{mean[2]:+.2f}"])
    lines += _table(header, rows) + [""]
    return lines + [*notes, ""] if notes else lines


def quality_label(quality: int, fmt: str, recompress: int | None = None) -> str:
    """A table column: ``QF<q>``, ``QF<q>→<r>`` when every LR was re-encoded at ``r`` before
    restoring, or ``lossless`` for PNG (one column, whatever the quality)."""
    if fmt == "png":
        return "lossless"
    return f"QF{quality}" if recompress is None else f"QF{quality}→{recompress}"


def markdown_report(records: list[dict], same_bytes: Sequence[dict] = ()) -> str:
    """``results.md``: per dataset, methods x qualities tables at the same codec quality
    (PSNR/SSIM, sizes, LR fidelity) and, given ``same_bytes`` (:attr:`EvalResult.same_bytes`
    records), each network against bicubic at the same bytes."""
    lines = ["# Evaluation report", ""]
    if records:
        r0 = records[0]
        lines += [
            f"Protocol (the SAIN paper's): x{r0['scale']}, {r0['format'].upper()} "
            f"(Pillow defaults), HR cropped to a multiple of {r0['modcrop']}, "
            f"{r0['scale']} border pixels ignored, latent seed {r0['seed']}. "
            "Cells are PSNR (dB) / SSIM averaged over the images; Y = BT.601 luma. "
            "bpp = bits of the compressed file per HR pixel. "
            + (
                f"Every LR was compressed at the column's first quality, then re-encoded at QF{again} "
                "(a second party re-compressing it) before the restoration; the size tables are the "
                "first file's. "
                if (again := r0.get("recompress"))
                else ""
            )
            + (
                "Two comparisons: at the same codec quality (every method's LR compressed at "
                "the same QF: the paper's; a learned LR is then usually a larger file) and "
                "at the same bytes (bicubic re-encoded to each network's file size)."
                if same_bytes
                else "Every method's LR is compressed at the same codec quality (the paper's comparison)."
            ),
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
            header = ["Method"] + [quality_label(q, recs[0]["format"], recs[0].get("recompress")) for q in qs]

            def rows_of(fn, cell=cell, qs=qs, names=names):
                return [[nm] + [fn(cell[(nm, q)]) if (nm, q) in cell else "-" for q in qs] for nm in names]

            lines += ["Y channel (PSNR/SSIM), at the same codec quality (the paper's protocol):", ""]
            lines += _table(header, rows_of(lambda r: _fmt_pair(r["psnr_y"], r["ssim_y"]))) + [""]
            mine = [r for r in same_bytes if r["dataset"] == dataset]
            if mine:
                lines += _same_bytes_table(mine)
            lines += ["RGB (PSNR/SSIM), at the same codec quality:", ""]
            lines += _table(header, rows_of(lambda r: _fmt_pair(r["psnr_rgb"], r["ssim_rgb"]))) + [""]
            lines += ["Compressed LR size at each codec quality, bits per HR pixel (mean bytes):", ""]
            lines += _table(header, rows_of(_size)) + [""]
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
    records: list[dict],
    per_image_rows: list[dict],
    out_dir: str | Path,
    overwrite: bool = False,
    same_bytes: Sequence[dict] = (),
    same_bytes_per_image: Sequence[dict] = (),
) -> list[Path]:
    """Write the report of an evaluation into ``out_dir`` (created if needed).

    Files: ``results.json`` (the list of per-dataset records; non-finite values as
    ``null``), ``results.csv`` (the same), ``per_image.csv``, ``results.md`` (per
    dataset: rows methods, columns quality factors, cells PSNR/SSIM on Y and RGB, file
    sizes, LR fidelity; ``jpeg-hr`` in its own table), ``psnr_vs_quality_<dataset>.png``
    (PSNR-Y against quality, one line per model, ``jpeg-hr`` left out) and
    ``rd_<dataset>.png`` (PSNR-Y against bits per HR pixel, every model). The plots need
    matplotlib and are skipped with a warning without it.

    With ``same_bytes`` (:attr:`~sain.evaluate.EvalResult.same_bytes`) also the
    comparison at the same bytes: ``same_bytes.csv`` (one row per dataset x network x
    quality, :data:`SAME_BYTES_RECORD_COLUMNS`), ``same_bytes_per_image.csv``
    (``same_bytes_per_image``), a "same bytes" table per dataset in ``results.md`` and
    each network record of ``results.json`` gets a ``"same_bytes"`` object.

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
    matched = {(r["dataset"], r["model"], r["quality"]): r for r in same_bytes}
    with open(out / "results.json", "w") as f:
        json.dump([_json_record(r, matched) for r in records], f, indent=1)
        f.write("\n")
    _write_csv(out / "results.csv", records, RECORD_COLUMNS)
    _write_csv(out / "per_image.csv", per_image_rows, IMAGE_COLUMNS)
    (out / "results.md").write_text(markdown_report(records, same_bytes) + "\n")
    written = [out / f for f in REPORT_FILES]
    for name, rows, columns in zip(
        SAME_BYTES_FILES,
        (same_bytes, same_bytes_per_image),
        (SAME_BYTES_RECORD_COLUMNS, SAME_BYTES_IMAGE_COLUMNS),
        strict=True,
    ):
        if same_bytes:
            _write_csv(out / name, list(rows), columns)
            written.append(out / name)
        else:
            (out / name).unlink(missing_ok=True)  # not left over from an earlier report
    return written + _plots(records, out)


def _json_record(record: dict, matched: dict[tuple, dict]) -> dict:
    """A record of ``results.json``: strict JSON values, and for a network its same-bytes
    comparison under ``"same_bytes"`` (the :data:`SAME_BYTES_COLUMNS`, ``unmatched_*``)."""
    out = {k: _json_value(v) for k, v in record.items()}
    sb = matched.get((record["dataset"], record["model"], record["quality"]))
    if sb is not None:
        keys = ("images", *SAME_BYTES_COLUMNS, "unmatched_high", "unmatched_low")
        out["same_bytes"] = {"match": "closest", **{k: _json_value(sb[k]) for k in keys}}
    return out
