"""The paper's evaluation protocol (Yang et al., AAAI 2023) for any models and image folders.

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

That is the comparison at the same codec quality. Each network (every model but
``bicubic`` and ``jpeg-hr``) is also compared with bicubic at the same bytes
(:mod:`sain.same_bytes`): per image and quality, bicubic's LR re-encoded at the quality
whose file is closest to the network's (the files the receiver gets, with ``recompress``).

The per-dataset means (one record per dataset x model x quality) and the per-image rows
are written by :func:`write_report` as ``results.json``, ``results.csv``,
``per_image.csv``, ``results.md`` (tables laid out like the paper's), PNG plots and
the same-bytes files.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .codecs import CODECS, check_format, codec_roundtrip
from .decoding import LOSSLESS_QUALITY  # the quality recorded for a lossless (PNG) LR, told to quality-aware models
from .eval_inputs import dataset_images, load_methods, modcrop, parse_qualities
from .imaging import read_image, write_image
from .metrics import psnr, ssim
from .models import RescalingModel
from .pipeline import BicubicMethod, HRCodecMethod, Method, ModelMethod, RefinedMethod
from .refine import check_refine_format, check_refine_steps
from .reports import aggregate, safe_name, write_report
from .same_bytes import BicubicAtBytes, aggregate_same_bytes

__all__ = [
    "BASELINE",
    "DEFAULT_HR_QUALITIES",
    "DEFAULT_QUALITIES",
    "HR_CODEC",
    "LOSSLESS_QUALITY",
    "EvalResult",
    "evaluate",
    "modcrop",
    "parse_qualities",
    "write_report",
]

log = logging.getLogger(__name__)

#: Special model names: the bicubic baseline and the "compress the HR image" alternative.
BASELINE = BicubicMethod.name
HR_CODEC = HRCodecMethod.name

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


@dataclass
class EvalResult:
    """What :func:`evaluate` returns.

    Attributes:
        records: one dict per dataset x model x quality with the per-dataset means
            (keys ``dataset, model, kind, format, quality, scale, modcrop, seed, images``
            and :data:`METRICS`), in dataset, model, quality order.
        per_image: one dict per image x model x quality (the same keys, ``image``,
            ``height`` and ``width`` instead of ``images``).
        same_bytes: one dict per dataset x network x quality: the network against bicubic
            at the same bytes (:func:`sain.same_bytes.aggregate_same_bytes`); empty for
            bicubic and ``jpeg-hr``, with PNG and with ``same_bytes=False``.
        same_bytes_per_image: the same per image (:meth:`~sain.same_bytes.BicubicAtBytes.row`).
    """

    records: list[dict] = field(default_factory=list)
    per_image: list[dict] = field(default_factory=list)
    same_bytes: list[dict] = field(default_factory=list)
    same_bytes_per_image: list[dict] = field(default_factory=list)


def _pair_metrics(a: Tensor, b: Tensor, crop: int, prefix: str, rgb: bool = True) -> dict[str, float]:
    out = {f"{prefix}psnr_y": psnr(a, b, crop, y_channel=True), f"{prefix}ssim_y": ssim(a, b, crop, y_channel=True)}
    if rgb:
        out[f"{prefix}psnr_rgb"] = psnr(a, b, crop, y_channel=False)
        out[f"{prefix}ssim_rgb"] = ssim(a, b, crop, y_channel=False)
    return out


def _save_compressed(path: Path, img: Tensor, fmt: str, quality: int) -> None:
    """Write the compressed file the codec produced (Pillow's encoder is deterministic)."""
    write_image(path, img, format=fmt, quality=None if fmt == "png" else quality)


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
    precision: str = "fp32",
    recompress: int | None = None,
    same_bytes: bool = True,
    refine: int = 0,
) -> EvalResult:
    """Run the SAIN paper's evaluation protocol.

    Images are processed one at a time (benchmarks mix sizes), each HR read as RGB
    (grayscale is replicated) and cropped to a multiple of ``modcrop`` at the top-left.

    Args:
        models: zoo names, weight files / reference checkpoints, ``"bicubic"``,
            ``"jpeg-hr"`` or already built :class:`~sain.models.RescalingModel` objects.
        datasets: image folders (searched recursively); a dataset is named by its folder.
        fmt: ``"jpeg"``, ``"webp"``, ``"avif"`` or ``"png"`` (Pillow's default settings).
        qualities: codec qualities of the LR (1..100), e.g. ``(30, 50, 70, 80, 90)``. PNG is
            lossless, so it gets one column whatever is given, recorded as quality
            :data:`LOSSLESS_QUALITY` (100; what a quality-aware model is told).
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
        precision: of the networks' dense blocks (:class:`~sain.pipeline.ModelMethod`;
            default fp32, the protocol's reference arithmetic).
        recompress: re-encode every received LR once more at this quality (a second party
            re-compressing the thumbnail), before restoring; quality-aware models are told
            the final quality. Records and rows carry ``recompress``.
        same_bytes: also compare each network (every model but ``bicubic`` and ``jpeg-hr``)
            with bicubic at the same bytes, per image and quality: bicubic's LR re-encoded
            at the quality whose file is closest to the network's, ties to the smaller
            file (:mod:`sain.same_bytes`; with ``recompress``, the files the receiver gets).
            Not with PNG (lossless: the quality does not change the size).
        refine: also evaluate each network with its thumbnail refined at the encoder by this
            many steps (:mod:`sain.refine`; JPEG only), as ``<model>+refine<N>``: one refined
            LR per image, compressed at every quality like the network's own.

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
    if fmt == "png":  # lossless: every quality gives the same file; one column, recorded as 100
        qualities = [LOSSLESS_QUALITY]
    methods, scale = load_methods(models, scale, precision)
    if check_refine_steps(refine):
        check_refine_format(fmt)
        methods += [RefinedMethod(m, refine) for m in methods if type(m) is ModelMethod]
    if recompress is not None:
        recompress = parse_qualities([recompress])[0]
    if hr_qualities is None:
        hr_qualities = DEFAULT_HR_QUALITIES.get(scale, DEFAULT_HR_QUALITIES[8])
    hr_qualities = parse_qualities(hr_qualities)
    n = scale if modcrop is None else modcrop
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1 or n % scale:
        raise ValueError(f"modcrop must be a positive multiple of the scale {scale}, got {modcrop!r}")
    data = dataset_images(datasets)
    save_root = Path(save_images_dir) if save_images_dir is not None else None
    for m in methods:
        if isinstance(m, ModelMethod):
            m.to(device)
    same_bytes = same_bytes and fmt != "png" and any(_is_network(m) for m in methods)

    from tqdm.auto import tqdm

    result = EvalResult()
    total = sum(len(images) for _, _, images in data)
    bar = tqdm(total=total, desc="eval", unit="img", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    try:
        with torch.inference_mode():
            for name, folder, images in data:
                rows: list[dict] = []
                matched: list[dict] = []
                for path in images:
                    bar.set_postfix_str(f"{name}/{path.name}", refresh=False)
                    image_rows, image_matched = _evaluate_image(
                        methods,
                        name,
                        folder,
                        path,
                        fmt,
                        qualities,
                        hr_qualities,
                        scale,
                        int(n),
                        seed,
                        save_root,
                        recompress,
                        same_bytes,
                    )
                    rows += image_rows
                    matched += image_matched
                    bar.update(1)
                result.per_image.extend(rows)
                result.records.extend(aggregate(rows))
                result.same_bytes_per_image.extend(matched)
                result.same_bytes.extend(aggregate_same_bytes(matched))
    finally:
        bar.close()
    return result


def _evaluate_image(
    methods: list[Method],
    dataset: str,
    folder: Path,
    path: Path,
    fmt: str,
    qualities: list[int],
    hr_qualities: list[int],
    scale: int,
    n: int,
    seed: int,
    save_root: Path | None,
    recompress: int | None = None,
    same_bytes: bool = False,
) -> tuple[list[dict], list[dict]]:
    """The rows of one image (every method and quality) and its same-bytes rows."""
    hr = modcrop(read_image(path), n)
    h, w = hr.shape[-2:]
    # SSIM needs an 11x11 window: on the HR after the border crop, and on the LR
    min_side = max(11 + 2 * scale, 11 * scale, n)
    if h < min_side or w < min_side:
        raise ValueError(
            f"image {path} is too small for the protocol at x{scale} "
            f"({h}x{w} after modcrop {n}; need at least {min_side} px per side)"
        )
    rel = path.relative_to(folder).as_posix()
    stem = safe_name(str(Path(rel).with_suffix("")))
    base = {
        "dataset": dataset,
        "image": rel,
        "height": int(h),
        "width": int(w),
        "format": fmt,
        "scale": scale,
        "modcrop": n,
        "seed": seed,
        "recompress": recompress,
    }
    hr_b = hr.unsqueeze(0)
    lr_ref = BicubicMethod(scale).downscale(hr_b)[0]  # MATLAB bicubic, 8-bit: what the LR should look like
    suffix = CODECS[fmt].suffix
    no_lr = {
        "lr_psnr_y": None,
        "lr_ssim_y": None,
        "lr_psnr_rgb": None,
        "lr_ssim_rgb": None,
        "received_psnr_y": None,
        "received_ssim_y": None,
    }
    rows: list[dict] = []
    matched: list[dict] = []
    bicubic = BicubicAtBytes(hr, scale, fmt, recompress) if same_bytes else None
    for m in methods:
        out_dir = None
        if save_root is not None:
            out_dir = save_root / safe_name(dataset) / safe_name(m.name)
            out_dir.mkdir(parents=True, exist_ok=True)
        sends_hr = m.kind == HR_CODEC  # jpeg-hr: the HR goes through the codec, over its own qualities
        lr = m.downscale(hr_b)  # the 8-bit image that is sent
        if not sends_hr:
            lr_metrics = _pair_metrics(lr[0], lr_ref, 0, "lr_")
            if out_dir is not None:
                write_image(out_dir / f"{stem}_lr.png", lr[0])
        for q in hr_qualities if sends_hr else qualities:
            received, sizes = codec_roundtrip(lr, fmt, q)
            got = sizes[0]  # the bytes the receiver gets
            if recompress is not None:
                received, (got,) = codec_roundtrip(received, fmt, recompress)
            restored = m.upscale(received, seed, quality=q if recompress is None else recompress)
            row = dict(base, model=m.name, kind=m.kind, quality=q)
            scores = _pair_metrics(restored[0], hr, scale, "")
            row.update(scores)
            if sends_hr:
                row.update(no_lr)
            else:
                row.update(lr_metrics)
                row.update(_pair_metrics(received[0], lr_ref, 0, "received_", rgb=False))
            row.update(bytes=sizes[0], bpp=8.0 * sizes[0] / (h * w))
            rows.append(row)
            if bicubic is not None and _is_network(m):
                matched.append(dict(base, model=m.name, kind=m.kind, quality=q))
                matched[-1].update(bicubic.row(got, scores["psnr_y"], scores["ssim_y"]))
            if out_dir is not None and sends_hr:
                _save_compressed(out_dir / f"{stem}_q{q}.{suffix}", hr, fmt, q)
            elif out_dir is not None:
                _save_compressed(out_dir / f"{stem}_lr_q{q}.{suffix}", lr[0], fmt, q)
                write_image(out_dir / f"{stem}_q{q}.png", restored[0])
    return rows, matched


def _is_network(m: Method) -> bool:
    """A model of its own (not bicubic, not ``jpeg-hr``): it gets a same-bytes comparison."""
    return m.kind not in (BicubicMethod.kind, HRCodecMethod.kind)
