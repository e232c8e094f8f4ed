"""Bundled and known models, by name.

Weight files live in ``sain/weights/`` inside the package and are self-describing
safetensors (configuration and provenance in the metadata; see MODELS.md). A model is
named on the command line and in Python by its zoo name (``sain-x2-jpeg``), a path to a
weight file or a reference checkpoint, or ``bicubic`` for the baseline.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .checkpoint import CheckpointError, load_checkpoint, read_metadata
from .models import RescalingModel

WEIGHTS_DIR = Path(str(resources.files("sain") / "weights"))


@dataclass(frozen=True)
class ZooEntry:
    name: str
    arch: str
    scale: int
    codec: str
    filename: str
    description: str

    @property
    def path(self) -> Path:
        return WEIGHTS_DIR / self.filename

    @property
    def available(self) -> bool:
        return self.path.is_file()


ZOO: dict[str, ZooEntry] = {e.name: e for e in [
    ZooEntry("sain-x2-jpeg", "sain", 2, "jpeg", "sain_x2_jpeg.safetensors",
             "SAIN x2 trained for JPEG (QF 75) by the project on a CPU budget"),
    ZooEntry("sain-x4-jpeg", "sain", 4, "jpeg", "sain_x4_jpeg.safetensors",
             "SAIN x4 trained for JPEG (QF 75) by the project on a CPU budget"),
    ZooEntry("sain-x2-webp", "sain", 2, "webp", "sain_x2_webp.safetensors",
             "SAIN x2 trained for WebP (QF 75) by the project on a CPU budget"),
    ZooEntry("irn-x2", "irn", 2, "jpeg", "irn_x2.safetensors",
             "IRN x2 baseline trained with the same budget as sain-x2-jpeg"),
]}

DEFAULT_MODEL = "sain-x2-jpeg"
BASELINES = ("bicubic",)


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


def load_model(name_or_path: str | Path) -> RescalingModel:
    """A model by zoo name or file path (eval mode, CPU, float32).

    Raises:
        CheckpointError: unknown name, a bundled model whose weights are not shipped in
        this build, or a file that is not a valid checkpoint.
    """
    key = str(name_or_path)
    if key in ZOO:
        entry = ZOO[key]
        if not entry.available:
            raise CheckpointError(f"model {key!r} is known but its weights are not bundled in this "
                                  f"version (expected {entry.path})")
        model = load_checkpoint(entry.path)
        model.name = key  # type: ignore[attr-defined]
        return model
    p = Path(key)
    if p.exists():
        model = load_checkpoint(p)
        model.name = p.stem  # type: ignore[attr-defined]
        return model
    known = ", ".join(list(ZOO) + list(BASELINES))
    raise CheckpointError(f"unknown model {key!r}: not a file and not one of {known}")
