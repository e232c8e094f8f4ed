"""Bundled and known models, by name: the one place a model name is resolved.

Weight files live in ``sain/weights/`` inside the package and are self-describing
safetensors (configuration and provenance in the metadata; see MODELS.md). A model is
named on the command line and in Python by its zoo name (``sain-x2-jpeg``), a path to a
weight file or a reference checkpoint; ``bicubic`` and ``jpeg-hr`` name the baselines
(methods of :mod:`sain.pipeline`, not networks)::

    name or path ─resolve_model─> (name, file) ─SHA-256 check (bundled)─> load_checkpoint ─> cache
    cache ─copy─> a fresh model for every caller (eval mode; frozen for inference)

A bundled file carries its SHA-256 in :data:`ZOO` and is checked when it is first loaded.
Loaded models are cached by file (path, modification time and size), and every call
hands out its own copy, so a caller that moves, edits or trains its model cannot change
what the next caller gets.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .checkpoint import CheckpointError, load_checkpoint, read_metadata
from .models import RescalingModel

__all__ = [
    "BASELINES",
    "DEFAULT_MODEL",
    "WEIGHTS_DIR",
    "ZOO",
    "ZooEntry",
    "clear_cache",
    "file_sha256",
    "get_model",
    "list_models",
    "load_model",
    "model_info",
    "model_name",
    "resolve_model",
]

WEIGHTS_DIR = Path(str(resources.files("sain") / "weights"))


@dataclass(frozen=True)
class ZooEntry:
    """One model of the zoo: its architecture, scale, codec, weight file and that file's SHA-256."""

    name: str
    arch: str
    scale: int
    codec: str
    filename: str
    description: str
    sha256: str | None = None  # of the bundled file; None while the weights are not shipped
    #: tile overlaps (LR pixels) for the downscale and the upscale, measured on the bundled
    #: weights with a margin (:func:`sain.tiling.measure_overlap`; checked by tests/test_tiling.py);
    #: None: the exact receptive radius
    tile_overlap: tuple[int, int] | None = None

    @property
    def path(self) -> Path:
        return WEIGHTS_DIR / self.filename

    @property
    def available(self) -> bool:
        return self.path.is_file()


ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in [
        ZooEntry(
            "sain-x2-jpeg",
            "sain",
            2,
            "jpeg",
            "sain_x2_jpeg.safetensors",
            "SAIN x2 trained for JPEG (QF 75) by the project on a CPU budget: its run's weight average at step 50,000",
            "c7566f232498d4941cc292ecb3d22a0596b09e8612a9f5bd4648c710b1f17aef",
            (24, 24),  # measured <= 20 / 20 on kodim01-03 (tolerance 1e-6) against the bound's 45 / 80
        ),
        ZooEntry(
            "sain-x4-jpeg",
            "sain",
            4,
            "jpeg",
            "sain_x4_jpeg.safetensors",
            "SAIN x4 trained for JPEG (QF 75) by the project: 1,030 steps on a lent GPU, 13,220 on a CPU",
            "ec4d72fe92b6b96e0872541771e5e1e5f65b2ccb6c3edb2178b452c6c3e6397d",
            (24, 24),  # 12 / 16 measured on the step-6000 export (tol 1e-6); steps 7750, 14250 pass test_tiling
        ),
        ZooEntry(
            "sain-x2-webp",
            "sain",
            2,
            "webp",
            "sain_x2_webp.safetensors",
            "SAIN x2 for WebP: sain-x2-jpeg with its V-blocks fine-tuned for WebP (QF 75); same thumbnails",
            "209ef872d05eaee49f923ae23ccba62d2efd7cf8792c861d0fd5759496e9e341",
            (24, 24),  # measured 16 / 16 (tolerance 1e-6), as sain-x2-jpeg (the same E-blocks)
        ),
        ZooEntry(
            "irn-x2",
            "irn",
            2,
            "jpeg",
            "irn_x2.safetensors",
            "IRN x2 baseline trained with the same budget as sain-x2-jpeg",
            "500b257f409498a561a5f95b696832bf34b30c7a9862790da9a2695e6af99933",
            (24, 24),  # measured 12 / 16 (tolerance 1e-6) against the bound's 75 / 80
        ),
        ZooEntry(
            "irn-x4",
            "irn",
            4,
            "jpeg",
            "irn_x4.safetensors",
            "IRN x4 baseline: irn-x2 as its first level, then 3,000 steps at x4 (CPU budget)",
            "1e609a31fef84014c767dce148d7119eb2a7b666e2494e0fe041130f1e268913",
            (24, 24),  # measured 12 / 12 (tolerance 1e-6) against the bound's 115 / 120
        ),
        ZooEntry(
            "dual-irn-x2",
            "dual-irn",
            2,
            "jpeg",
            "dual_irn_x2.safetensors",
            "Dual-IRN x2 baseline (D-IRN downscales, U-IRN's inverse restores), both IRNs from irn-x2",
            "e13d967fdf36cb6c5d814dbccea5b507dec9a187284bc62c66c26516ed17efb8",
            (24, 24),  # measured 12 / 16 (tolerance 1e-6) against the bound's 75 / 80
        ),
        ZooEntry(
            "sain-x2-jpeg-qf",
            "sain-qf",
            2,
            "jpeg",
            "sain_x2_jpeg_qf.safetensors",
            "SAIN x2 whose restoring blocks know the JPEG quality (read from the file), fine-tuned from sain-x2-jpeg",
        ),
    ]
}

DEFAULT_MODEL = "sain-x2-jpeg"
#: Method names that are not networks (see :func:`sain.pipeline.get_method`).
BASELINES = ("bicubic", "jpeg-hr")

_CACHE: dict[tuple, RescalingModel] = {}


def list_models() -> list[ZooEntry]:
    return list(ZOO.values())


def model_info(entry: ZooEntry) -> dict:
    """Metadata of a bundled weight file (empty when the file is not shipped)."""
    if not entry.available:
        return {}
    meta = read_metadata(entry.path)
    out = dict(meta)
    for k in ("config", "training_config", "eval"):
        if k in out:
            try:
                out[k] = json.loads(out[k])
            except (json.JSONDecodeError, TypeError):
                pass
    return out


def model_name(model: RescalingModel) -> str:
    """The name of a model: its zoo name or weight-file stem, else ``<arch>-x<scale>``."""
    return str(getattr(model, "name", None) or f"{model.arch}-x{model.scale}")


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resolve_model(name_or_path: str | os.PathLike | None = None) -> tuple[str, Path, ZooEntry | None]:
    """``(name, weight file, zoo entry or None)`` for a zoo name or a file path.

    ``None`` is :data:`DEFAULT_MODEL`. A zoo name wins over a file of the same name; a
    file is named by its stem.

    Raises:
        CheckpointError: a baseline name, a known model whose weights are not bundled,
            or neither a zoo name nor an existing file (the message lists the names).
    """
    key = str(DEFAULT_MODEL if name_or_path is None else name_or_path)
    if key in BASELINES:
        raise CheckpointError(f"{key!r} is a baseline, not a network; choose a model (see 'sain models')")
    if key in ZOO:
        entry = ZOO[key]
        if not entry.available:
            raise CheckpointError(
                f"model {key!r} is known but its weights are not bundled in this version (expected {entry.path})"
            )
        return key, entry.path, entry
    p = Path(key)
    if p.exists():
        return p.stem, p, None
    known = ", ".join(list(ZOO) + list(BASELINES))
    raise CheckpointError(f"unknown model {key!r}: not a file and not one of {known}")


def _load_cached(name: str, path: Path, entry: ZooEntry | None) -> RescalingModel:
    try:
        st = path.stat()
        key: tuple = (name, str(path.resolve()), st.st_mtime_ns, st.st_size)
    except OSError:
        key = (name, str(path), None, None)  # let load_checkpoint name the problem
    if key not in _CACHE:
        if entry is not None and entry.sha256 is not None:
            digest = file_sha256(path)
            if digest != entry.sha256:
                raise CheckpointError(
                    f"model {name!r}: {path} is not the bundled weight file (SHA-256 "
                    f"{digest[:12]}..., expected {entry.sha256[:12]}...); reinstall sain"
                )
        model = load_checkpoint(path)
        model.name = name  # type: ignore[assignment]
        if entry is not None and entry.tile_overlap is not None:
            model.tile_overlap = dict(zip(("down", "up"), entry.tile_overlap, strict=True))  # type: ignore[assignment]
        _CACHE[key] = model.eval()
    return copy.deepcopy(_CACHE[key])


def load_model(name_or_path: str | os.PathLike | None = None, *, frozen: bool = False) -> RescalingModel:
    """A model by zoo name or file path (eval mode, CPU, float32): a fresh copy, the caller's own.

    The file is read (and a bundled file's SHA-256 checked) once; later calls copy the
    cached model. The model gets a ``name`` attribute (zoo name or file stem), which
    thumbnails and reports record.

    Args:
        name_or_path: a zoo name, a weight file or reference checkpoint; ``None`` is
            :data:`DEFAULT_MODEL`.
        frozen: parameters with ``requires_grad=False`` (for inference).

    Raises:
        CheckpointError: unknown name, a bundled model whose weights are not shipped in
        this build or do not match their SHA-256, or a file that is not a valid checkpoint.
    """
    model = _load_cached(*resolve_model(name_or_path))
    if frozen:
        model.requires_grad_(False)
    return model


def get_model(model: str | os.PathLike | RescalingModel | None = None) -> RescalingModel:
    """A model for inference: by zoo name or weight-file path, or the model itself.

    A name or path gives a fresh, frozen copy of the cached model (:func:`load_model`);
    a :class:`~sain.models.RescalingModel` is returned as it is (given a ``name``
    attribute if it has none).

    Raises:
        CheckpointError: as :func:`load_model`; a baseline name is refused too.
    """
    if isinstance(model, RescalingModel):
        if not hasattr(model, "name"):
            model.name = model_name(model)  # type: ignore[assignment]
        return model
    return load_model(model, frozen=True)


def clear_cache() -> None:
    """Forget the loaded models (the next load reads and checks the files again)."""
    _CACHE.clear()
