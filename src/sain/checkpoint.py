"""Reading and writing model weights.

Two kinds of file are read by :func:`load_checkpoint`:

* the project's own weight files: safetensors whose metadata carries the model's
  configuration (``arch`` plus the constructor arguments) and its provenance;
* state dicts saved by the reference SAIN / IRN implementations (``torch.save``d, keys
  with or without ``module.``, optionally wrapped in ``{"state_dict": ...}`` or
  ``{"params": ...}``); scale and block counts are inferred from the keys and shapes.

Loading never executes pickled code (``torch.load(weights_only=True)`` or safetensors).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .errors import CheckpointError
from .fileio import atomic_path
from .models import RescalingModel, get_arch, infer_arch
from .models import build_model as _build_model

#: The ``format`` tag of the project's weight files; a file with another tag is refused.
WEIGHTS_FORMAT = "sain-weights-v1"

__all__ = [
    "WEIGHTS_FORMAT",
    "CheckpointError",
    "build_model",
    "infer_reference_config",
    "load_checkpoint",
    "load_state_dict_file",
    "model_from_state_dict",
    "read_metadata",
    "save_weights",
]


def build_model(arch: str, **config: Any) -> RescalingModel:
    """Build a model by registered architecture name (``"sain"``, ``"irn"``, ...) and its
    constructor arguments; an unknown name is a :class:`CheckpointError` naming the known ones."""
    return _build_model(arch, **config)


def _strip(sd: Mapping[str, Any]) -> dict[str, Tensor]:
    for wrap in ("state_dict", "params", "params_ema", "model"):
        if wrap in sd and isinstance(sd[wrap], Mapping):
            sd = sd[wrap]
            break
    out: dict[str, Tensor] = {}
    for k, v in sd.items():
        if not isinstance(v, Tensor):
            continue
        out[k[7:] if k.startswith("module.") else k] = v
    return out


def infer_reference_config(sd: Mapping[str, Tensor]) -> tuple[str, dict[str, Any]]:
    """``(arch, config)`` of a reference-layout state dict, read from its keys and shapes by
    the registered architectures (:meth:`RescalingModel.infer_config`)."""
    return infer_arch(sd)


def load_state_dict_file(path: str | os.PathLike) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Read tensors and metadata from a safetensors or torch file, without unpickling code."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such file")
    with open(p, "rb") as f:
        head = f.read(16)
    is_st = p.suffix == ".safetensors" or (len(head) >= 9 and head[8:9] == b"{")
    if is_st:
        try:
            from safetensors import safe_open

            tensors: dict[str, Tensor] = {}
            with safe_open(str(p), framework="pt") as f:
                meta = dict(f.metadata() or {})
                for k in f.keys():
                    tensors[k] = f.get_tensor(k)
            return tensors, meta
        except Exception as e:  # noqa: BLE001 - any parse failure is "not a checkpoint"
            if p.suffix == ".safetensors":
                raise CheckpointError(f"{p}: not a valid safetensors file ({e.__class__.__name__})") from None
    try:
        with warnings.catch_warnings():  # torch's notes on foreign pickles: the error below says it
            warnings.simplefilter("ignore")
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        looks_torch = head[:4] == b"PK\x03\x04" or head[:1] == b"\x80"  # torch's zip or legacy pickle
        if looks_torch and ("weights_only" in str(e) or "Unsupported global" in str(e)):
            why = "it contains pickled code or objects, which are never loaded"
        else:
            why = "not a PyTorch or safetensors file"
        raise CheckpointError(f"{p}: not a readable checkpoint ({why})") from None
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{p}: not a state dict (found {type(obj).__name__})")
    return _strip(obj), {}


def model_from_state_dict(
    sd: Mapping[str, Tensor], meta: Mapping[str, str] | None = None, source: str = "checkpoint"
) -> RescalingModel:
    """Build the model described by ``meta`` (or inferred from ``sd``) and load ``sd`` strictly."""
    meta = dict(meta or {})
    fmt = meta.get("format")
    if fmt is not None and fmt != WEIGHTS_FORMAT:
        raise CheckpointError(f"{source}: unsupported weight format {fmt!r} (this version reads {WEIGHTS_FORMAT})")
    config: dict[str, Any] | None = None
    if "config" in meta and "arch" in meta:
        try:
            config = json.loads(meta["config"])
        except json.JSONDecodeError:
            raise CheckpointError(f"{source}: metadata 'config' is not JSON") from None
        if not isinstance(config, dict):
            raise CheckpointError(f"{source}: metadata 'config' is not a JSON object")
        arch = meta["arch"]
    else:
        try:
            arch, config = infer_reference_config(sd)
        except CheckpointError as e:
            raise CheckpointError(f"{source}: {e}") from None
    try:
        cls = get_arch(arch)
    except CheckpointError as e:
        raise CheckpointError(f"{source}: {e}") from None
    return cls.from_state_dict(sd, config, source=source)


def load_checkpoint(path: str | os.PathLike) -> RescalingModel:
    """Load a model (eval mode, CPU, float32) from a weight file or a reference checkpoint.

    Raises:
        CheckpointError: (a ``ValueError``) with a one-line reason when the file is missing,
        unreadable, not a checkpoint, or does not match a known model.
    """
    sd, meta = load_state_dict_file(path)
    model = model_from_state_dict(sd, meta, source=str(path))
    setattr(model, "metadata", meta)  # noqa: B010 - an attribute the class does not declare
    return model


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata of a project weight file (empty for reference checkpoints)."""
    return load_state_dict_file(path)[1]


def save_weights(model: RescalingModel, path: str | os.PathLike, **metadata: Any) -> Path:
    """Write ``model``'s weights as a self-describing safetensors file, atomically.

    The metadata holds ``arch``, ``config`` (JSON of the constructor arguments) and every
    extra keyword (non-strings are stored as JSON), e.g. the training command and data.
    """
    from safetensors.torch import save_file

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    meta = {"arch": model.arch, "config": json.dumps(model.config(), sort_keys=True), "format": WEIGHTS_FORMAT}
    for k, v in metadata.items():
        meta[k] = v if isinstance(v, str) else json.dumps(v, sort_keys=True)
    tensors = {k: v.detach().float().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(p) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return p
