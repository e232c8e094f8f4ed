"""Dual-IRN: the asymmetric baseline of the SAIN paper (Yang et al., AAAI 2023), two full IRNs.

    downscale:  HR x ─D-IRN─> (LR_D, z_D)            LR_D = the LR image actually sent
    simulate:   HR x ─U-IRN─> (y_U, z_U)             y_U imitates the *compressed* LR
    upscale:    (received LR, z ~ N(0, I)) ─U-IRN^-1─> HR

    training:   LR_D ─Q─> DiffJPEG ─> C ─┬─ L2(y_U, C)          (gradients into D-IRN)
                                         └─ U-IRN^-1(C, N(0, I)) ─> x_hat ─ L1(x_hat, x)

D-IRN and U-IRN are IRNs of the same size (x2: Haar + 8 vanilla blocks each, twice IRN's
parameters). Unlike SAIN they share nothing: the network that makes the LR (D) is not the
one that is inverted to restore it (U), so the pair is asymmetric, and the two are tied
only by the training objective (``"dual-irn"``, :mod:`sain.train.losses.dual_irn`), which
passes the gradients of U's restoration through the differentiable JPEG into D's LR.

The invertible pair of this model is U-IRN's: ``model(x)`` returns ``(y_U, LR_D)`` and
``model(x, return_logdet=True)`` U-IRN's log-determinant, the negative of
``model.inverse(y_U, return_logdet=True)``'s. Module names: ``d_irn.operations.{n}`` and
``u_irn.operations.{n}`` (each an :class:`~sain.models.IRN`); the paper publishes no
reference checkpoint of this baseline, so there is no reference layout to read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from ..errors import CheckpointError
from .base import RescalingModel
from .irn import IRN
from .registry import register


@register("dual-irn")
class DualIRN(RescalingModel):
    """Dual-IRN network: D-IRN downscales, U-IRN's inverse upscales (module docstring).

    Args:
        scale: 2 or 4 (8 works but is not from the paper).
        blocks_per_level: vanilla blocks after each Haar step, in each of the two IRNs.

    Shape:
        ``forward``: x (N, 3, H, W) in [0, 1] -> y_U (N, 3*s^2, H/s, W/s), LR_D (N, 3, H/s, W/s).
        ``inverse``: y (N, 3*s^2, h, w) -> x (N, 3, h*s, w*s), y[:, :3].

    Example:
        >>> model = DualIRN(scale=2, blocks_per_level=1).eval()
        >>> y, lr = model(torch.rand(1, 3, 16, 16))
        >>> tuple(y.shape), tuple(lr.shape)
        ((1, 12, 8, 8), (1, 3, 8, 8))
    """

    objective = "dual-irn"

    def __init__(self, scale: int = 2, blocks_per_level: int = 8):
        super().__init__(scale)
        self.d_irn: IRN = IRN(scale, blocks_per_level)
        self.u_irn: IRN = IRN(scale, blocks_per_level)
        self.blocks_per_level = self.d_irn.blocks_per_level
        self.channels = self.d_irn.channels

    def config(self) -> dict[str, Any]:
        return {"scale": self.scale, "blocks_per_level": self.blocks_per_level}

    @classmethod
    def infer_config(cls, sd: Mapping[str, Tensor]) -> dict[str, Any] | None:
        """``None``: no reference checkpoint layout of Dual-IRN is published (only SAIN's
        and IRN's are); the project's weight files carry their configuration."""
        return None

    @classmethod
    def from_pretrained(cls, source: RescalingModel, config: Mapping[str, Any]) -> DualIRN:
        """``run.init``: a Dual-IRN from a Dual-IRN of the same configuration, or from a
        trained IRN of the same scale and blocks, copied into both D-IRN and U-IRN (so D
        starts with IRN's thumbnail and U with its restoration, and the training only has to
        teach U to undo the codec and D to help it)."""
        if type(source) is IRN:
            model = cls.from_config(config)
            assert isinstance(model, DualIRN)
            if source.config() != model.d_irn.config():
                raise CheckpointError(
                    f"cannot initialise {cls.arch} {dict(config)} from irn {source.config()}: "
                    "scale and blocks_per_level must match"
                )
            model.d_irn.load_state_dict(source.state_dict())
            model.u_irn.load_state_dict(source.state_dict())
            return model
        return super().from_pretrained(source, config)  # type: ignore[return-value]

    def receptive_radius(self, direction: str) -> int:
        """``"down"``: D-IRN's (it makes the LR); ``"up"``: U-IRN's (its inverse restores)."""
        if direction == "down":
            return self.d_irn.receptive_radius("down")
        if direction == "up":
            return self.u_irn.receptive_radius("up")
        raise ValueError(f"direction must be 'down' or 'up', got {direction!r}")

    def forward(self, x: Tensor, return_logdet: bool = False):
        """HR ``x`` (N, 3, H, W) -> ``(y_U, LR_D)`` (+ U-IRN's ``logdet`` (N,) if asked).

        ``y_U`` is U-IRN's full forward output (its first 3 channels simulate the
        compressed LR, the rest is z_U); ``LR_D`` is D-IRN's LR, the image to send."""
        self._check_hr(x)
        lr = self.d_irn(x)[1]
        out = self.u_irn(x, return_logdet=return_logdet)
        return (out[0], lr, out[2]) if return_logdet else (out[0], lr)

    def inverse(self, y: Tensor, return_logdet: bool = False):
        """``y`` (N, 3*s^2, h, w) -> ``(x, y[:, :3])`` through U-IRN's inverse."""
        return self.u_irn.inverse(y, return_logdet=return_logdet)

    def downscale(self, hr: Tensor) -> Tensor:
        """HR -> the LR to send: D-IRN only (U-IRN is not run)."""
        self._check_hr(hr)
        return self.d_irn(hr)[1]

    def sample_latent(self, lr: Tensor, generator: torch.Generator | None = None, chunk: int | None = None) -> Tensor:
        """A standard-normal z, (N, 3*(s^2-1), h, w), drawn as :meth:`IRN.sample_latent` does."""
        return self.u_irn.sample_latent(lr, generator, chunk)
