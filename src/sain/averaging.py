"""Weight averaging ("model soup"): one model whose weights are a weighted mean of several.

Checkpoints of one training run (the bundled export and a later one, or two weight
averages along the way) lie in one basin of the loss; their mean is a model of the same
size and speed that often generalises better than either (Wortsman et al., "Model soups",
ICML 2022; Izmailov et al., "Averaging weights leads to wider optima", UAI 2018)::

    w = sum_i a_i * w_i        a_i >= 0, sum_i a_i = 1

Every float tensor is averaged in float64 and stored as float32; the models must have the
same architecture and configuration (the same tensors). The result keeps the provenance of
the *last* input (its training command, data, iterations, hardware) and records the mean in
``averaged_from``: each input's name, sha256, iterations and coefficient.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from .checkpoint import save_weights
from .models import RescalingModel
from .zoo import file_sha256, get_model, resolve_model

__all__ = ["average_models", "average_weights", "parse_coefficients"]


def parse_coefficients(text: str | Sequence[float] | None, n: int) -> list[float]:
    """``n`` averaging coefficients: ``None`` gives equal ones; ``"0.3,0.7"`` or a sequence is
    checked (``n`` values, each >= 0, not all 0) and normalised to sum 1."""
    if text is None:
        return [1.0 / n] * n
    if isinstance(text, str):
        try:
            vals = [float(t) for t in text.split(",") if t.strip()]
        except ValueError:
            raise ValueError(f"coefficients must be comma-separated numbers, got {text!r}") from None
    else:
        vals = [float(v) for v in text]
    if len(vals) != n:
        raise ValueError(f"{len(vals)} coefficients for {n} models")
    if any(not v >= 0 or v == float("inf") for v in vals) or sum(vals) <= 0:
        raise ValueError(f"coefficients must be finite, >= 0 and not all 0, got {vals}")
    total = sum(vals)
    return [v / total for v in vals]


def average_models(models: Sequence[RescalingModel], coefficients: Sequence[float] | None = None) -> RescalingModel:
    """A new model (eval mode, CPU, float32) whose weights are the weighted mean of ``models``'.

    Raises:
        ValueError: fewer than two models, different architectures, configurations or
            tensors, or bad coefficients.
    """
    if len(models) < 2:
        raise ValueError(f"averaging needs at least two models, got {len(models)}")
    coef = parse_coefficients(coefficients, len(models))
    first = models[0]
    names = [getattr(m, "name", f"model {i + 1}") for i, m in enumerate(models)]
    for m, name in zip(models[1:], names[1:], strict=True):
        if m.arch != first.arch or m.config() != first.config():
            raise ValueError(
                f"{name} is {m.arch} {json.dumps(m.config(), sort_keys=True)}, {names[0]} is "
                f"{first.arch} {json.dumps(first.config(), sort_keys=True)}: only models of one architecture "
                "and configuration can be averaged"
            )
    states = [m.state_dict() for m in models]
    keys = list(states[0])
    for sd, name in zip(states[1:], names[1:], strict=True):
        if list(sd) != keys or any(sd[k].shape != states[0][k].shape for k in keys):
            raise ValueError(f"{name} and {names[0]} do not have the same tensors")
    mean = {}
    for k in keys:
        t0 = states[0][k]
        if not t0.is_floating_point():
            if any(not torch.equal(sd[k], t0) for sd in states[1:]):
                raise ValueError(f"integer tensor {k!r} differs between the models")
            mean[k] = t0.clone()
            continue
        acc = torch.zeros(t0.shape, dtype=torch.float64)
        for a, sd in zip(coef, states, strict=True):
            acc += a * sd[k].detach().to("cpu", torch.float64)
        mean[k] = acc.to(torch.float32)
    out = type(first)(**first.config())
    out.load_state_dict(mean, strict=True)
    return out.eval()


def _describe(spec: str | os.PathLike) -> tuple[str, str | None]:
    """A model argument's display name and the sha256 of its file (zoo names: the bundled file)."""
    name, path, _ = resolve_model(spec)
    return name, (file_sha256(path) if Path(path).is_file() else None)


def average_weights(
    inputs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    coefficients: str | Sequence[float] | None = None,
    force: bool = False,
) -> Path:
    """Average the weight files (or zoo names) ``inputs`` into the weight file ``out``.

    Nothing is written when an input is unreadable or the models differ; an existing
    ``out`` is refused unless ``force`` (and is never one of the inputs).
    """
    if len(inputs) < 2:
        raise ValueError(f"averaging needs at least two models, got {len(inputs)}")
    out_p = Path(out)
    if out_p.suffix != ".safetensors":
        raise ValueError(f"{out_p}: the output must be a .safetensors file")
    for spec in inputs:
        p = Path(str(spec))
        if p.exists() and out_p.exists() and p.resolve() == out_p.resolve():
            raise ValueError(f"{out_p} is also an input: write the average to a new file")
    if out_p.exists() and not force:
        raise FileExistsError(f"{out_p} exists (use --force to overwrite)")
    coef = parse_coefficients(coefficients, len(inputs))
    models = [get_model(spec) for spec in inputs]  # CheckpointError: one line naming the file
    avg = average_models(models, coef)
    meta = dict(getattr(models[-1], "metadata", {}) or {})
    for k in ("arch", "config", "format", "zoo_name", "eval", "eval_table", "val_psnr_y", "best_val_psnr_y"):
        meta.pop(k, None)  # measured on the input, not on the average (a bundle re-measures it)
    sources = []
    for spec, m, a in zip(inputs, models, coef, strict=True):
        name, sha = _describe(spec)
        sources.append(
            {
                "model": name,
                "sha256": sha,
                "iterations": (getattr(m, "metadata", {}) or {}).get("iterations"),
                "coefficient": round(a, 6),
            }
        )
    meta["averaged_from"] = json.dumps(sources)
    return save_weights(avg, out_p, **meta)
