"""Compact, portable training state: a run's ``checkpoint.pt`` as one safetensors file.

A run that continues in another session or on another machine needs the model, the
Adam moments, the schedule, the RNG state and the step (and, with ``optim.ema``, the weight
average, stored as its difference from the weights in bfloat16: the difference is small, so
its rounding error is far below the weights' own precision). ``pack`` stores them in a
safetensors file (no pickle), with the Adam moments in bfloat16 to halve their size:
resuming from a packed file continues the run closely but, unlike ``--resume`` from
``checkpoint.pt``, not bit-identically.

    sain pack runs/x2/checkpoint.pt train_state/x2.safetensors
    sain train CONFIG --out runs/x2 --resume-from train_state/x2.safetensors
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..fileio import atomic_path

FORMAT = "sain-train-state-v1"


def pack(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    moments_dtype: torch.dtype = torch.bfloat16,
    shard_bytes: int | None = None,
) -> Path:
    """Write the training state of ``checkpoint`` (a ``checkpoint.pt``) to ``out`` (safetensors).

    ``shard_bytes``: split it into files of at most that size (``out``, then
    ``NAME.shard1.safetensors``, ...; e.g. to bring a state back from a machine that
    returns files of at most 16 MiB); :func:`unpack` reads them all from ``out``.
    """
    from safetensors.torch import save_file

    src = Path(checkpoint)
    if not src.is_file():
        raise FileNotFoundError(f"no training checkpoint at {src}")
    try:
        state = torch.load(src, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001
        raise ValueError(f"{src}: not a training checkpoint") from None
    if not isinstance(state, dict) or state.get("format") != "sain-train-v1":
        raise ValueError(f"{src}: not a sain training checkpoint")
    tensors: dict[str, Tensor] = {f"model.{k}": v.float().contiguous() for k, v in state["model"].items()}
    opt = state["optimizer"]
    for idx, st in opt["state"].items():
        for name, v in st.items():
            if not isinstance(v, Tensor):
                continue
            dtype = moments_dtype if name.startswith("exp_avg") else torch.float32
            tensors[f"optim.{idx}.{name}"] = v.to(dtype).contiguous()
    tensors["torch_rng"] = state["torch_rng"].clone()
    ema = state.get("ema")
    if ema is not None:
        model = state["model"]
        tensors.update(
            {
                f"ema_delta.{k}": (v.float() - model[k].float()).to(moments_dtype).contiguous()
                for k, v in ema["model"].items()
            }
        )
    sched = dict(state["scheduler"])
    if isinstance(sched.get("milestones"), Counter | dict):
        sched["milestones"] = {str(k): v for k, v in sched["milestones"].items()}
    meta = {
        "format": FORMAT,
        "step": str(int(state["step"])),
        "best_psnr": json.dumps(float(state["best_psnr"])),
        "wall_time": json.dumps(float(state.get("wall_time", 0.0))),
        "param_groups": json.dumps(opt["param_groups"]),
        "scheduler": json.dumps(sched),
        "config": json.dumps(state["config"]),
    }
    if ema is not None:
        meta["ema_updates"] = str(int(ema["updates"]))
    dst = Path(out)
    dst.parent.mkdir(parents=True, exist_ok=True)
    shards = _split(tensors, shard_bytes) if shard_bytes else [tensors]
    meta["shards"] = str(len(shards))
    for i, part in enumerate(shards):
        with atomic_path(shard_path(dst, i)) as tmp:
            save_file(part, str(tmp), metadata={**meta, "shard": str(i)})
    return dst


def shard_path(path: str | os.PathLike, i: int) -> Path:
    """File of shard ``i`` of a packed state: the path itself for shard 0, ``NAME.shardI.safetensors`` after."""
    p = Path(path)
    return p if i == 0 else p.with_name(f"{p.stem}.shard{i}{p.suffix}")


def _split(tensors: dict[str, Tensor], limit: int) -> list[dict[str, Tensor]]:
    """Tensors grouped in order into files of at most ``limit`` bytes (a bigger tensor alone)."""
    parts: list[dict[str, Tensor]] = [{}]
    size = 0
    for k, v in tensors.items():
        n = v.numel() * v.element_size()
        if parts[-1] and size + n > limit:
            parts.append({})
            size = 0
        parts[-1][k] = v
        size += n
    return parts


def unpack(path: str | os.PathLike) -> dict[str, Any]:
    """Read a packed state back into the structure of ``checkpoint.pt`` (moments in float32)."""
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no packed training state at {p}")

    def read(q: Path) -> tuple[dict[str, str], dict[str, Tensor]]:
        if not q.is_file():
            raise FileNotFoundError(f"packed training state {p} lacks its shard {q.name}")
        try:
            with safe_open(str(q), framework="pt") as f:
                return dict(f.metadata() or {}), {k: f.get_tensor(k) for k in f.keys()}
        except Exception:  # noqa: BLE001
            raise ValueError(f"{q}: not a safetensors file") from None

    meta, tensors = read(p)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{p}: not a packed sain training state")
    for i in range(1, int(meta.get("shards", "1"))):
        m, t = read(shard_path(p, i))
        if m.get("format") != FORMAT or m.get("step") != meta["step"] or m.get("shard") != str(i):
            raise ValueError(f"{shard_path(p, i)}: not shard {i} of {p} (step {meta['step']})")
        tensors.update(t)
    model = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    opt_state: dict[int, dict[str, Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, idx, name = k.split(".", 2)
            opt_state.setdefault(int(idx), {})[name] = v.float()
    ema = None
    if "ema_updates" in meta:
        ema = {
            "model": {k[10:]: model[k[10:]] + v.float() for k, v in tensors.items() if k.startswith("ema_delta.")},
            "updates": int(meta["ema_updates"]),
        }
    sched = json.loads(meta["scheduler"])
    if isinstance(sched.get("milestones"), dict):
        sched["milestones"] = Counter({int(k): v for k, v in sched["milestones"].items()})
    return {
        "format": "sain-train-v1",
        "step": int(meta["step"]),
        "best_psnr": json.loads(meta["best_psnr"]),
        "wall_time": json.loads(meta["wall_time"]),
        "model": model,
        "optimizer": {"state": opt_state, "param_groups": json.loads(meta["param_groups"])},
        "scheduler": sched,
        "scaler": None,
        "torch_rng": tensors["torch_rng"],
        "cuda_rng": None,
        "config": json.loads(meta["config"]),
        "ema": ema,
    }
