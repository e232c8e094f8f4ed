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
import re
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor

from .fileio import atomic_path
from .models import IRN, SAIN, RescalingModel

ARCHS: dict[str, type[RescalingModel]] = {"sain": SAIN, "irn": IRN}


class CheckpointError(ValueError):
    """A file that is not a checkpoint, or does not match any known model."""


def build_model(arch: str, **config: Any) -> RescalingModel:
    """Build a model by architecture name (``"sain"`` or ``"irn"``) and constructor arguments."""
    if arch not in ARCHS:
        raise CheckpointError(f"unknown architecture {arch!r} (known: {', '.join(ARCHS)})")
    return ARCHS[arch](**config)


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


def _max_index(sd: Mapping[str, Tensor], prefix: str) -> int:
    pat = re.compile(re.escape(prefix) + r"\.(\d+)\.")
    idx = [int(m.group(1)) for k in sd for m in [pat.match(k)] if m]
    return max(idx) + 1 if idx else 0


def _scale_from_channels(c: int) -> int:
    scale = {12: 2, 48: 4, 192: 8}.get(c)
    if scale is None:
        raise CheckpointError(f"coupling width {c} does not match x2, x4 or x8")
    return scale


def infer_reference_config(sd: Mapping[str, Tensor]) -> tuple[str, dict[str, Any]]:
    """``(arch, config)`` of a reference-layout state dict, read from its keys and shapes."""
    if any(k.startswith("down_operations.") for k in sd):
        e = _max_index(sd, "down_operations")
        v = _max_index(sd, "comp_operations")
        w = sd.get("down_operations.0.F.conv1.weight")
        if w is None:
            raise CheckpointError("SAIN checkpoint lacks down_operations.0.F.conv1.weight")
        scale = _scale_from_channels(w.shape[1] + 3)
        k = sd["gmm.gmm_para"].shape[1] if "gmm.gmm_para" in sd else 5
        return "sain", {"scale": scale, "e_blocks": e, "v_blocks": v, "gmm_components": int(k)}
    if any(k.startswith("operations.") for k in sd):
        n = _max_index(sd, "operations")
        blocks = [i for i in range(n) if f"operations.{i}.F.conv1.weight" in sd]
        widths = sorted({sd[f"operations.{i}.F.conv1.weight"].shape[1] + 3 for i in blocks})
        if not blocks:
            raise CheckpointError("IRN checkpoint has no coupling blocks")
        scale = _scale_from_channels(max(widths))
        levels = {2: 1, 4: 2, 8: 3}[scale]
        if len(blocks) % levels:
            raise CheckpointError(f"{len(blocks)} IRN blocks cannot split evenly over {levels} levels")
        return "irn", {"scale": scale, "blocks_per_level": len(blocks) // levels}
    raise CheckpointError("not a SAIN or IRN state dict (no down_operations.* or operations.* keys)")


def to_reference_state_dict(sd: Mapping[str, Tensor], arch: str) -> dict[str, Tensor]:
    """Keys of a reference state dict renamed to this project's modules (drops Haar weights).

    IRN's reference ``operations`` list interleaves Haar steps and blocks exactly like
    :class:`IRN`, so its indices carry over unchanged.
    """
    return {k: v for k, v in sd.items() if not k.endswith("haar_weights")}


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
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            why = "it contains pickled code or objects, which are never loaded"
        else:
            why = "not a PyTorch or safetensors file"
        raise CheckpointError(f"{p}: not a readable checkpoint ({why})") from None
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{p}: not a state dict (found {type(obj).__name__})")
    return _strip(obj), {}


def _infer(sd: Mapping[str, Tensor], source: str) -> tuple[str, dict[str, Any]]:
    try:
        return infer_reference_config(sd)
    except CheckpointError as e:
        raise CheckpointError(f"{source}: {e}") from None


def model_from_state_dict(sd: Mapping[str, Tensor], meta: Mapping[str, str] | None = None,
                          source: str = "checkpoint") -> RescalingModel:
    """Build the model described by ``meta`` (or inferred from ``sd``) and load ``sd`` strictly."""
    meta = dict(meta or {})
    if "config" in meta and "arch" in meta:
        try:
            config = json.loads(meta["config"])
        except json.JSONDecodeError:
            raise CheckpointError(f"{source}: metadata 'config' is not JSON") from None
        arch = meta["arch"]
    else:
        arch, config = _infer(sd, source)
    model = build_model(arch, **config)
    sd = to_reference_state_dict(sd, arch)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise CheckpointError(f"{source}: weights do not match {arch} {config}: " + ", ".join(parts))
    for k, v in expected.items():
        if sd[k].shape != v.shape:
            raise CheckpointError(f"{source}: {k} has shape {tuple(sd[k].shape)}, expected {tuple(v.shape)}")
    model.load_state_dict({k: sd[k].to(v.dtype) for k, v in expected.items()})
    return model.eval()


def load_checkpoint(path: str | os.PathLike) -> RescalingModel:
    """Load a model (eval mode, CPU, float32) from a weight file or a reference checkpoint.

    Raises:
        CheckpointError: (a ``ValueError``) with a one-line reason when the file is missing,
        unreadable, not a checkpoint, or does not match a known model.
    """
    sd, meta = load_state_dict_file(path)
    model = model_from_state_dict(sd, meta, source=str(path))
    model.metadata = meta  # type: ignore[attr-defined]
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
    meta = {"arch": model.arch, "config": json.dumps(model.config(), sort_keys=True), "format": "sain-weights-v1"}
    for k, v in metadata.items():
        meta[k] = v if isinstance(v, str) else json.dumps(v, sort_keys=True)
    tensors = {k: v.detach().float().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(p) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return p
