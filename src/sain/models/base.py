"""The contract shared by every rescaling network of the project (SAIN and IRN).

    y, lr = model(x)            x (N, 3, H, W) in [0, 1], H and W multiples of the scale
                                y (N, 3*s^2, H/s, W/s): the full forward output
                                lr (N, 3, H/s, W/s): the high-quality LR image to send
    x, lr = model.inverse(y)    the exact inverse of the forward; lr is the recovered LR
    z = model.sample_latent(lr, generator)   a latent for upscaling, (N, 3*(s^2-1), h, w)
    lr = model.downscale(hr)    == model(hr)[1]
    hr = model.upscale(lr, generator)        == model.inverse(cat(lr, z))[0]

``model(x, return_logdet=True)`` and ``model.inverse(y, return_logdet=True)`` also return
the per-sample log-determinant (forward == -inverse for the same pair).
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn


class RescalingModel(nn.Module):
    """Base class: input checks, convenience methods and the configuration contract."""

    arch: str = ""

    def __init__(self, scale: int):
        super().__init__()
        if scale not in (2, 4, 8):
            raise ValueError(f"scale must be 2, 4 or 8, got {scale!r}")
        self.scale = scale
        self.levels = int(math.log2(scale))
        self.latent_channels = 3 * (scale * scale - 1)

    # -- configuration -------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """Constructor arguments; ``type(model)(**model.config())`` rebuilds the model."""
        raise NotImplementedError

    # -- checks --------------------------------------------------------------------
    def _check_hr(self, x: Tensor) -> None:
        if not isinstance(x, Tensor) or x.dim() != 4:
            raise ValueError(f"expected a 4-D (N, 3, H, W) tensor, got shape {tuple(getattr(x, 'shape', ()))}")
        if x.shape[1] != 3:
            raise ValueError(f"expected 3 (RGB) channels, got {x.shape[1]}")
        if x.shape[2] % self.scale or x.shape[3] % self.scale:
            raise ValueError(
                f"image size {x.shape[2]}x{x.shape[3]} is not a multiple of the scale {self.scale}")

    def _check_y(self, y: Tensor) -> None:
        c = 3 * self.scale * self.scale
        if not isinstance(y, Tensor) or y.dim() != 4:
            raise ValueError(f"expected a 4-D (N, {c}, h, w) tensor, got shape {tuple(getattr(y, 'shape', ()))}")
        if y.shape[1] != c:
            raise ValueError(f"expected {c} channels for the inverse at x{self.scale}, got {y.shape[1]}")

    def _check_lr(self, lr: Tensor) -> None:
        if not isinstance(lr, Tensor) or lr.dim() != 4 or lr.shape[1] != 3:
            raise ValueError(f"expected a (N, 3, h, w) LR tensor, got shape {tuple(getattr(lr, 'shape', ()))}")

    # -- convenience ---------------------------------------------------------------
    def sample_latent(self, lr: Tensor, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError

    def downscale(self, hr: Tensor) -> Tensor:
        """HR (N, 3, H, W) in [0, 1] -> the LR image to send (N, 3, H/s, W/s), not yet quantised."""
        return self(hr)[1]

    def upscale(self, lr: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Received LR (N, 3, h, w) -> restored HR (N, 3, h*s, w*s) (not clamped)."""
        self._check_lr(lr)
        z = self.sample_latent(lr, generator)
        return self.inverse(torch.cat((lr, z), 1))[0]
