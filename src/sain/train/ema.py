"""An exponential moving average (EMA) of the weights during training (``optim.ema``).

After every optimiser step the average moves towards the current weights::

    d_n   = min(decay, (1 + n) / (10 + n))     n = the number of updates so far (from 1)
    ema  <- d_n * ema + (1 - d_n) * weights

The warm-up ``(1 + n) / (10 + n)`` (as TensorFlow's ``ExponentialMovingAverage`` with
``num_updates``) lets an average started late in a run, or from fresh weights, follow the
weights closely at first and average over more steps as it ages, up to about
``1 / (1 - decay)`` steps. Every coupling stays invertible for any weights, so the averaged
network is a valid model of the same architecture; the trainer validates and exports it
(``best.safetensors``, ``model.safetensors``) next to the raw weights' validation.
"""

from __future__ import annotations

import copy
from typing import Any, Generic, TypeVar

import torch
from torch import Tensor, nn

__all__ = ["WeightEMA"]

M = TypeVar("M", bound=nn.Module)


class WeightEMA(Generic[M]):
    """The running average of ``model``'s parameters (buffers are copied, not averaged)."""

    def __init__(self, model: M, decay: float, updates: int = 0):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = updates
        self.model: M = copy.deepcopy(model).eval().requires_grad_(False)

    def rate(self) -> float:
        """The decay ``d_n`` of the next update."""
        n = self.updates + 1
        return min(self.decay, (1.0 + n) / (10.0 + n))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = self.rate()
        self.updates += 1
        mine: list[Tensor] = list(self.model.parameters())
        torch._foreach_lerp_(mine, [p.detach() for p in model.parameters()], 1.0 - d)
        for b, src in zip(self.model.buffers(), model.buffers(), strict=True):
            b.copy_(src)

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = int(state["updates"])
