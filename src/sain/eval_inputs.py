"""What an evaluation (:func:`sain.evaluate.evaluate`) runs on: its quality list, its crop,
its methods (networks and baselines at one scale) and its datasets (image folders)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from torch import Tensor

from .codecs import check_quality
from .imaging import list_images
from .models import RescalingModel
from .pipeline import BASELINE_METHODS, Method, ModelMethod, get_method
from .zoo import get_model

__all__ = ["dataset_images", "load_methods", "modcrop", "parse_qualities"]


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


def load_methods(
    models: Sequence[str | Path | RescalingModel | Method],
    scale: int | None,
    precision: str = "fp32",
    device: str | None = None,
) -> tuple[list[Method], int]:
    """The methods to evaluate and the scale: networks first (their scale decides), then
    the baselines at that scale, in the order given."""
    if not models:
        raise ValueError("no model to evaluate")
    nets: dict[int, Method] = {}
    for i, m in enumerate(models):
        if isinstance(m, RescalingModel):
            nets[i] = ModelMethod(get_model(m).eval(), precision=precision, device=device)
        elif isinstance(m, Method) or str(m) not in BASELINE_METHODS:
            nets[i] = get_method(m, precision=precision, device=device)
    scale = _resolve_scale(list(nets.values()), scale)
    methods = [nets[i] if i in nets else get_method(str(m), scale) for i, m in enumerate(models)]
    seen: set[str] = set()
    for meth in methods:
        if meth.name in seen:
            raise ValueError(f"model {meth.name!r} given twice (or two weight files with the same name)")
        seen.add(meth.name)
    return methods, scale


def _resolve_scale(methods: list[Method], scale: int | None) -> int:
    scales = {m.name: m.scale for m in methods if m.kind == ModelMethod.kind}
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


def dataset_images(datasets: Sequence[str | Path]) -> list[tuple[str, Path, list[Path]]]:
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
            raise ValueError(
                f"two data folders named {name!r} ({names[name]} and {folder}); "
                "rename one so the report can tell them apart"
            )
        names[name] = folder
        out.append((name, folder, images))
    return out
