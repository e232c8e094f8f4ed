"""Helpers of the training loop: atomic checkpoint writes, loading a state and the schedule
after a resume, validation, and data workers that leave stop signals to the main process."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import torch

from ..fileio import atomic_path
from ..metrics import psnr
from ..models import RescalingModel
from ..pipeline import roundtrip
from .config import TrainConfig

__all__ = ["apply_schedule", "atomic_torch_save", "ignore_stop_signals", "load_state", "validate"]


def atomic_torch_save(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def ignore_stop_signals(worker_id: int) -> None:
    """Data workers leave Ctrl-C / SIGTERM to the main process, which checkpoints first.

    A terminal's Ctrl-C reaches the whole process group; without this the workers would
    die first and take the run down before it could write its checkpoint.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def apply_schedule(
    opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.MultiStepLR, cfg: TrainConfig, step: int
) -> None:
    """Make the configuration's learning-rate schedule authoritative after a resume.

    The optimiser and scheduler states carry the learning rate and milestones of the run
    that wrote them; a resumed run follows the current config instead (so a schedule can
    be changed on resume). With an unchanged config this changes nothing.
    """
    from collections import Counter

    sched.milestones = Counter(cfg.optim.milestones)
    sched.gamma = cfg.optim.gamma
    sched.base_lrs = [cfg.optim.lr for _ in opt.param_groups]
    passed = sum(1 for m in cfg.optim.milestones if m <= step)
    for g in opt.param_groups:
        g["initial_lr"] = cfg.optim.lr
        g["lr"] = cfg.optim.lr * cfg.optim.gamma**passed
        g["weight_decay"] = cfg.optim.weight_decay
        g["betas"] = (cfg.optim.beta1, cfg.optim.beta2)
    sched._last_lr = [g["lr"] for g in opt.param_groups]


def load_state(state: dict[str, Any], model, opt, sched, scaler, device: torch.device) -> tuple[int, float, float]:
    """Load a training state (``checkpoint.pt`` or an unpacked one) into the run's objects and
    restore the RNGs; returns ``(step, best validation PSNR, wall time)``."""
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    for g in opt.param_groups:
        for p in g["params"]:
            # moments laid out like their parameter: a packed state stores them dense (NCHW),
            # and every update of a channels-last parameter would pay a layout conversion
            for k, v in opt.state.get(p, {}).items():
                if isinstance(v, torch.Tensor) and v.shape == p.shape and v.stride() != p.stride():
                    opt.state[p][k] = torch.empty_like(p, dtype=v.dtype).copy_(v)
    sched.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["torch_rng"])
    if state.get("cuda_rng") is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_rng"])
    return int(state["step"]), float(state["best_psnr"]), float(state.get("wall_time", 0.0))


@torch.no_grad()
def validate(model: RescalingModel, images: list[torch.Tensor], fmt: str, quality: int) -> float:
    """Mean PSNR-Y (border = scale) of the full pipeline at one codec quality (seed 0)."""
    was_training = model.training
    model.eval()
    vals = []
    for img in images:
        rt = roundtrip(model, img[None], fmt, quality, seed=0)
        vals.append(psnr(rt.restored[0], img, crop_border=model.scale, y_channel=True))
    model.train(was_training)
    return sum(vals) / max(len(vals), 1)
