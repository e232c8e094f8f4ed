"""The paper's evaluation protocol (SAIN_SPEC section 5) for any models and image folders.

For every image of every dataset, every model and every codec quality::

    HR ─read_image, modcrop─> hr ─pipeline.downscale─> LR (8-bit, "sent") ─codec @ Q─> received
                                                                              │
                           restored HR <─pipeline.upscale (seeded GMM sample)─┘
    metrics: restored vs hr          PSNR / SSIM on Y and RGB, ``scale`` pixels cropped per border
             sent LR vs bicubic LR   PSNR / SSIM, no crop (how much the sent thumbnail looks bicubic)
             received vs bicubic LR  PSNR / SSIM, no crop (the same after compression)
             size                    bytes of the compressed LR, bpp = 8 * bytes / (H * W of the HR)

This is exactly :func:`sain.pipeline.roundtrip` (same functions, same rounding); the LR
is only computed once per image and reused for every quality.

Models are named like on the command line: a zoo name, a weight file or reference
checkpoint (named by its stem), ``bicubic`` (MATLAB-style bicubic down, 8-bit, codec,
MATLAB-style bicubic up) or ``jpeg-hr``: the rate-distortion alternative that compresses
the full-resolution image itself with the same codec, over its own sweep of qualities
(:data:`DEFAULT_HR_QUALITIES`), so that its file sizes span those of the rescalers' LRs.

The per-dataset means (one record per dataset x model x quality) and the per-image rows
are written by :func:`write_report` as ``results.json``, ``results.csv``,
``per_image.csv``, ``results.md`` (tables laid out like the paper's) and PNG plots.
"""
from __future__ import annotations

import csv
import json
import logging
import math
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .codecs import CODECS, check_format, check_quality, codec_roundtrip
from .imaging import list_images, read_image, write_image
from .metrics import psnr, ssim
from .models import RescalingModel
from .pipeline import downscale, upscale

__all__ = [
    "BASELINE",
    "DEFAULT_HR_QUALITIES",
    "DEFAULT_QUALITIES",
    "HR_CODEC",
    "EvalResult",
    "evaluate",
    "modcrop",
    "parse_qualities",
    "write_report",
]

log = logging.getLogger(__name__)

#: Special model names: the bicubic baseline and the "compress the HR image" alternative.
BASELINE = "bicubic"
HR_CODEC = "jpeg-hr"

#: The paper's quality factors.
DEFAULT_QUALITIES: tuple[int, ...] = (30, 50, 70, 80, 90)

#: Qualities of ``jpeg-hr`` by scale. The full-resolution image has ``scale**2`` times
#: the pixels of the LR, so it needs much lower qualities to reach the same file sizes.
#: Measured with JPEG on Set5/Set14 (GTmod12), in bits per HR pixel: the bicubic LR at
#: QF 30..90 takes 0.26..0.85 at x2 and 0.10..0.31 at x4, the HR image at QF 3..50 takes
#: 0.22..1.09. So the x2 sweep spans the rescalers' range with some margin on both sides
#: (a learned LR is usually a little larger than the bicubic one). Baseline JPEG cannot go
#: below about 0.21 bpp on these images (QF 1 and 2 are identical: the quantisation tables
#: are clamped at 255), so at x4 and x8 ``jpeg-hr`` only reaches the top of the range.
DEFAULT_HR_QUALITIES: dict[int, tuple[int, ...]] = {
    2: (3, 5, 10, 15, 20, 30, 40, 50),
    4: (1, 3, 5, 8, 10, 15),
    8: (1, 3, 5, 10),
}

#: Per-image and per-dataset metric columns (``None`` where a metric does not apply,
#: e.g. the LR metrics of ``jpeg-hr``; infinite PSNR where images are identical, e.g.
#: the sent LR of ``bicubic`` against the bicubic LR).
METRICS: tuple[str, ...] = (
    "psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb",
    "lr_psnr_y", "lr_ssim_y", "lr_psnr_rgb", "lr_ssim_rgb",
    "received_psnr_y", "received_ssim_y",
    "bytes", "bpp",
)


@dataclass
class EvalResult:
    """What :func:`evaluate` returns.

    Attributes:
        records: one dict per dataset x model x quality with the per-dataset means
            (keys ``dataset, model, kind, format, quality, scale, modcrop, seed, images``
            and :data:`METRICS`), in dataset, model, quality order.
        per_image: one dict per image x model x quality (the same keys, ``image``,
            ``height`` and ``width`` instead of ``images``).
    """

    records: list[dict] = field(default_factory=list)
    per_image: list[dict] = field(default_factory=list)


@dataclass
class _Method:
    name: str
    kind: str                         # "bicubic", "jpeg-hr" or "model"
    model: RescalingModel | None = None


def parse_qualities(text: str | Iterable[int]) -> list[int]:
    """``"30,50,70"`` (or a list of ints) -> ``[30, 50, 70]``: unique, sorted, each in 1..100.

    Raises:
        ValueError: empty list, a value that is not an integer, or one out of 1..100.
    """
    items = [s.strip() for s in text.split(",")] if isinstance(text, str) else list(text)
    out: list[int] = []
    for item in items:
        if isinstance(item, str):
            if not re.fullmatch(r"[+-]?\d+", item):
                raise ValueError(f"bad quality list {text!r}: {item!r} is not an integer")
            q = int(item)
        elif isinstance(item, bool) or not isinstance(item, int | np.integer):
            raise ValueError(f"bad quality list {text!r}: {item!r} is not an integer")
        else:
            q = int(item)
        out.append(check_quality(q))
    if not out:
        raise ValueError("empty quality list")
    return sorted(set(out))


def modcrop(img: Tensor, n: int) -> Tensor:
    """Crop ``(3, H, W)`` to ``(3, H - H % n, W - W % n)``, keeping the top-left corner (GTmod-n)."""
    h, w = img.shape[-2:]
    return img[..., : h - h % n, : w - w % n]


def _load_methods(models: Sequence[str | Path | RescalingModel]) -> list[_Method]:
    from .zoo import load_model

    if not models:
        raise ValueError("no model to evaluate")
    methods: list[_Method] = []
    for m in models:
        if isinstance(m, RescalingModel):
            name = getattr(m, "name", None) or f"{type(m).__name__.lower()}-x{m.scale}"
            methods.append(_Method(name, "model", m.eval()))
        elif str(m) == BASELINE:
            methods.append(_Method(BASELINE, "bicubic"))
        elif str(m) == HR_CODEC:
            methods.append(_Method(HR_CODEC, "jpeg-hr"))
        else:
            model = load_model(m).eval()
            methods.append(_Method(getattr(model, "name", Path(str(m)).stem), "model", model))
    seen: set[str] = set()
    for meth in methods:
        if meth.name in seen:
            raise ValueError(f"model {meth.name!r} given twice (or two weight files with the same name)")
        seen.add(meth.name)
    return methods


def _resolve_scale(methods: list[_Method], scale: int | None) -> int:
    scales = {m.name: m.model.scale for m in methods if m.model is not None}
    distinct = sorted(set(scales.values()))
    if len(distinct) > 1:
        desc = ", ".join(f"{n} x{s}" for n, s in scales.items())
        raise ValueError(f"models of different scales cannot be evaluated together ({desc})")
    if scale is not None:
        if isinstance(scale, bool) or not isinstance(scale, int | np.integer) or scale < 2:
            raise ValueError(f"scale must be an integer >= 2, got {scale!r}")
        for name, s in scales.items():
            if s != scale:
                raise ValueError(f"model {name!r} is a x{s} model but --scale {scale} was given")
        return int(scale)
    return distinct[0] if distinct else 2


def _dataset_images(datasets: Sequence[str | Path]) -> list[tuple[str, Path, list[Path]]]:
    if not datasets:
        raise ValueError("no data folder given")
    out: list[tuple[str, Path, list[Path]]] = []
    names: dict[str, Path] = {}
    for d in datasets:
        folder = Path(d)
        if not folder.exists():
            raise FileNotFoundError(f"data folder not found: {folder}")
        if not folder.is_dir():
            raise ValueError(f"not a folder: {folder}")
        images = list_images(folder)
        if not images:
            raise ValueError(f"no images in {folder}")
        name = folder.resolve().name
        if name in names:
            raise ValueError(f"two data folders named {name!r} ({names[name]} and {folder}); "
                             "rename one so the report can tell them apart")
        names[name] = folder
        out.append((name, folder, images))
    return out


def _pair_metrics(a: Tensor, b: Tensor, crop: int, prefix: str, rgb: bool = True) -> dict[str, float]:
    out = {f"{prefix}psnr_y": psnr(a, b, crop, y_channel=True),
           f"{prefix}ssim_y": ssim(a, b, crop, y_channel=True)}
    if rgb:
        out[f"{prefix}psnr_rgb"] = psnr(a, b, crop, y_channel=False)
        out[f"{prefix}ssim_rgb"] = ssim(a, b, crop, y_channel=False)
    return out


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_") or "x"


def _save_compressed(path: Path, img: Tensor, fmt: str, quality: int) -> None:
    """Write the compressed file the codec produced (Pillow's encoder is deterministic)."""
    write_image(path, img, format=fmt, quality=None if fmt == "png" else quality)


def _mean(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    if any(math.isinf(v) for v in vals):
        return float("inf")
    return float(np.mean(vals))


def evaluate(
    models: Sequence[str | Path | RescalingModel],
    datasets: Sequence[str | Path],
    fmt: str = "jpeg",
    qualities: Iterable[int] | str = DEFAULT_QUALITIES,
    scale: int | None = None,
    seed: int = 0,
    modcrop: int | None = None,
    save_images_dir: str | Path | None = None,
    progress: bool = True,
    hr_qualities: Iterable[int] | str | None = None,
    device: str | torch.device = "cpu",
) -> EvalResult:
    """Run the evaluation protocol of SAIN_SPEC section 5.

    Images are processed one at a time (benchmarks mix sizes), each HR read as RGB
    (grayscale is replicated) and cropped to a multiple of ``modcrop`` at the top-left.

    Args:
        models: zoo names, weight files / reference checkpoints, ``"bicubic"``,
            ``"jpeg-hr"`` or already built :class:`~sain.models.RescalingModel` objects.
        datasets: image folders (searched recursively); a dataset is named by its folder.
        fmt: ``"jpeg"``, ``"webp"``, ``"avif"`` or ``"png"`` (Pillow's default settings).
        qualities: codec qualities of the LR (1..100), e.g. ``(30, 50, 70, 80, 90)``.
        scale: the rescaling factor; defaults to the models' (all must agree), or 2 when
            only ``bicubic`` / ``jpeg-hr`` are evaluated. A model of another scale is an error.
        seed: seed of the latent (GMM) sample, the same for every image, so an image's
            result does not depend on the order or on the other images.
        modcrop: crop each HR to a multiple of this (default: the scale; the paper's Set5
            and Set14 use 12). Must be a multiple of the scale.
        save_images_dir: if given, write ``<dataset>/<model>/<image>_lr.png`` (the sent LR),
            ``<image>_lr_q<Q>.<ext>`` (the compressed LR file), ``<image>_q<Q>.png``
            (the restored HR) there; for ``jpeg-hr`` the compressed HR ``<image>_q<Q>.<ext>``.
        progress: show a tqdm progress bar over images on stderr.
        hr_qualities: the quality sweep of ``jpeg-hr`` (default :data:`DEFAULT_HR_QUALITIES`).
        device: where the networks run (``"cpu"``, ``"cuda"``...).

    Returns:
        :class:`EvalResult` with per-dataset ``records`` and ``per_image`` rows. PSNR in dB,
        SSIM in [0, 1]; HR metrics crop ``scale`` pixels per border, LR metrics crop none.

    Raises:
        ValueError: unknown/unavailable format, bad qualities, unknown model, mixed
            scales, an empty folder or an image too small for the protocol.
        FileNotFoundError: a missing data folder.
    """
    fmt = check_format(fmt)
    qualities = parse_qualities(qualities)
    methods = _load_methods(models)
    scale = _resolve_scale(methods, scale)
    if hr_qualities is None:
        hr_qualities = DEFAULT_HR_QUALITIES.get(scale, DEFAULT_HR_QUALITIES[8])
    hr_qualities = parse_qualities(hr_qualities)
    n = scale if modcrop is None else modcrop
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1 or n % scale:
        raise ValueError(f"modcrop must be a positive multiple of the scale {scale}, got {modcrop!r}")
    data = _dataset_images(datasets)
    save_root = Path(save_images_dir) if save_images_dir is not None else None
    for m in methods:
        if m.model is not None:
            m.model.to(device)

    from tqdm.auto import tqdm

    result = EvalResult()
    total = sum(len(images) for _, _, images in data)
    bar = tqdm(total=total, desc="eval", unit="img", disable=not progress, file=sys.stderr,
               dynamic_ncols=True)
    try:
        with torch.inference_mode():
            for name, folder, images in data:
                rows: list[dict] = []
                for path in images:
                    bar.set_postfix_str(f"{name}/{path.name}", refresh=False)
                    rows.extend(_evaluate_image(methods, name, folder, path, fmt, qualities,
                                                hr_qualities, scale, int(n), seed, save_root))
                    bar.update(1)
                result.per_image.extend(rows)
                result.records.extend(_aggregate(rows, methods, name, scale, int(n), seed))
    finally:
        bar.close()
    return result


def _evaluate_image(methods: list[_Method], dataset: str, folder: Path, path: Path, fmt: str,
                    qualities: list[int], hr_qualities: list[int], scale: int, n: int, seed: int,
                    save_root: Path | None) -> list[dict]:
    hr = modcrop(read_image(path), n)
    h, w = hr.shape[-2:]
    # SSIM needs an 11x11 window: on the HR after the border crop, and on the LR
    min_side = max(11 + 2 * scale, 11 * scale, n)
    if h < min_side or w < min_side:
        raise ValueError(f"image {path} is too small for the protocol at x{scale} "
                         f"({h}x{w} after modcrop {n}; need at least {min_side} px per side)")
    rel = path.relative_to(folder).as_posix()
    stem = _safe_name(str(Path(rel).with_suffix("")))
    base = {"dataset": dataset, "image": rel, "height": int(h), "width": int(w),
            "format": fmt, "scale": scale, "modcrop": n, "seed": seed}
    hr_b = hr.unsqueeze(0)
    lr_ref = downscale(None, hr_b, scale)[0]  # MATLAB bicubic, 8-bit: what the LR should look like
    rows: list[dict] = []
    for m in methods:
        out_dir = None
        if save_root is not None:
            out_dir = save_root / _safe_name(dataset) / _safe_name(m.name)
            out_dir.mkdir(parents=True, exist_ok=True)
        if m.kind == "jpeg-hr":
            for q in hr_qualities:
                received, sizes = codec_roundtrip(hr_b, fmt, q)
                row = dict(base, model=m.name, kind=m.kind, quality=q)
                row.update(_pair_metrics(received[0], hr, scale, ""))
                row.update({"lr_psnr_y": None, "lr_ssim_y": None, "lr_psnr_rgb": None,
                            "lr_ssim_rgb": None, "received_psnr_y": None, "received_ssim_y": None})
                row.update(bytes=sizes[0], bpp=8.0 * sizes[0] / (h * w))
                rows.append(row)
                if out_dir is not None:
                    _save_compressed(out_dir / f"{stem}_q{q}.{CODECS[fmt].suffix}", hr, fmt, q)
            continue
        lr = downscale(m.model, hr_b, scale)           # the 8-bit LR that is sent
        lr_metrics = _pair_metrics(lr[0], lr_ref, 0, "lr_")
        if out_dir is not None:
            write_image(out_dir / f"{stem}_lr.png", lr[0])
        for q in qualities:
            received, sizes = codec_roundtrip(lr, fmt, q)
            restored = upscale(m.model, received, scale, seed)
            row = dict(base, model=m.name, kind=m.kind, quality=q)
            row.update(_pair_metrics(restored[0], hr, scale, ""))
            row.update(lr_metrics)
            row.update(_pair_metrics(received[0], lr_ref, 0, "received_", rgb=False))
            row.update(bytes=sizes[0], bpp=8.0 * sizes[0] / (h * w))
            rows.append(row)
            if out_dir is not None:
                _save_compressed(out_dir / f"{stem}_lr_q{q}.{CODECS[fmt].suffix}", lr[0], fmt, q)
                write_image(out_dir / f"{stem}_q{q}.png", restored[0])
    return rows


def _aggregate(rows: list[dict], methods: list[_Method], dataset: str, scale: int, n: int,
               seed: int) -> list[dict]:
    records = []
    for m in methods:
        mine = [r for r in rows if r["model"] == m.name]
        for q in sorted({r["quality"] for r in mine}):
            sel = [r for r in mine if r["quality"] == q]
            rec = {"dataset": dataset, "model": m.name, "kind": m.kind, "format": sel[0]["format"],
                   "quality": q, "scale": scale, "modcrop": n, "seed": seed, "images": len(sel)}
            for k in METRICS:
                rec[k] = _mean([r[k] for r in sel])
            records.append(rec)
    return records


# --------------------------------------------------------------------------- report

_RECORD_COLUMNS = ("dataset", "model", "kind", "format", "quality", "scale", "modcrop", "seed",
                   "images", *METRICS)
_IMAGE_COLUMNS = ("dataset", "image", "height", "width", "model", "kind", "format", "quality",
                  "scale", "modcrop", "seed", *METRICS)
REPORT_FILES = ("results.json", "results.csv", "per_image.csv", "results.md")


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


def _markdown(records: list[dict]) -> str:
    lines = ["# Evaluation report", ""]
    if records:
        r0 = records[0]
        lines += [f"Protocol (SAIN_SPEC section 5): x{r0['scale']}, {r0['format'].upper()} "
                  f"(Pillow defaults), HR cropped to a multiple of {r0['modcrop']}, "
                  f"{r0['scale']} border pixels ignored, latent seed {r0['seed']}. "
                  "Cells are PSNR (dB) / SSIM averaged over the images; Y = BT.601 luma. "
                  "bpp = bits of the compressed file per HR pixel.", ""]
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

            def rows_of(fn):
                return [[nm] + [fn(cell[(nm, q)]) if (nm, q) in cell else "-" for q in qs] for nm in names]

            lines += ["Y channel (PSNR/SSIM):", ""]
            lines += _table(header, rows_of(lambda r: _fmt_pair(r["psnr_y"], r["ssim_y"]))) + [""]
            lines += ["RGB (PSNR/SSIM):", ""]
            lines += _table(header, rows_of(lambda r: _fmt_pair(r["psnr_rgb"], r["ssim_rgb"]))) + [""]
            lines += ["Compressed LR size, bits per HR pixel (mean bytes):", ""]
            lines += _table(header, rows_of(lambda r: f"{r['bpp']:.3f} ({r['bytes']:.0f} B)")) + [""]
            lines += ["Received (compressed) LR vs bicubic LR, Y (PSNR/SSIM):", ""]
            lines += _table(header, rows_of(lambda r: _fmt_pair(r["received_psnr_y"],
                                                                r["received_ssim_y"]))) + [""]
            lr_rows = [[nm, _fmt_pair(cell[(nm, qs[0])]["lr_psnr_y"], cell[(nm, qs[0])]["lr_ssim_y"]),
                        _fmt_pair(cell[(nm, qs[0])]["lr_psnr_rgb"], cell[(nm, qs[0])]["lr_ssim_rgb"])]
                       for nm in names if (nm, qs[0]) in cell]
            lines += ["Sent LR (8-bit, before the codec) vs bicubic LR (PSNR/SSIM):", ""]
            lines += _table(["Method", "Y", "RGB"], lr_rows) + [""]
        if hrc:
            hrc = sorted(hrc, key=lambda r: r["quality"])
            lines += [f"{HR_CODEC}: the full-resolution image compressed directly (its own qualities):", ""]
            header = ["", *(f"QF{r['quality']}" for r in hrc)]
            lines += _table(header, [
                ["bpp", *(f"{r['bpp']:.3f}" for r in hrc)],
                ["Y", *(_fmt_pair(r["psnr_y"], r["ssim_y"]) for r in hrc)],
                ["RGB", *(_fmt_pair(r["psnr_rgb"], r["ssim_rgb"]) for r in hrc)],
            ]) + [""]
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
                fname = f"psnr_vs_quality_{_safe_name(dataset)}.png"
            else:
                ax.set_xlabel("bits per HR pixel")
                fname = f"rd_{_safe_name(dataset)}.png"
            ax.set_ylabel("PSNR-Y (dB)")
            ax.set_title(title)
            ax.grid(True, alpha=0.3)
            ax.legend()
            fig.tight_layout()
            fig.savefig(out / fname)
            plt.close(fig)
            written.append(out / fname)
    return written


def write_report(records: list[dict], per_image_rows: list[dict], out_dir: str | Path,
                 overwrite: bool = False) -> list[Path]:
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
    _write_csv(out / "results.csv", records, _RECORD_COLUMNS)
    _write_csv(out / "per_image.csv", per_image_rows, _IMAGE_COLUMNS)
    (out / "results.md").write_text(_markdown(records) + "\n")
    return [out / f for f in REPORT_FILES] + _plots(records, out)
