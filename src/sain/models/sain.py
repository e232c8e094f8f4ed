"""SAIN: the Self-Asymmetric Invertible Network (Yang et al., AAAI 2023).

    HR x ─Haar^k─> [E-block]*e ─> [V-block]*v ─> (y_sim, z)
                          └─ LR of the last E-block = the high-quality LR actually sent

    upscale: (compressed LR, z ~ GMM) ─V^-1─> ─E^-1─> ─Haar^-k─> HR

Defaults from the paper: x2 = 5 E-blocks + 3 V-blocks (2,015,437 parameters), x4 = 10 +
6 (6,493,763). Module names match the reference checkpoints (``haar_operations``,
``down_operations``, ``comp_operations``, ``gmm``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import CheckpointError
from .base import RescalingModel
from .coupling import EnhancedInvBlock, InvBlock
from .gmm import GaussianMixture
from .haar import HaarDownsampling
from .receptive import chain_radius
from .registry import register

DEFAULT_BLOCKS = {2: (5, 3), 4: (10, 6), 8: (15, 9)}
#: Scale by coupling width (3 * s^2 channels).
SCALE_OF_WIDTH = {12: 2, 48: 4, 192: 8}


def count_blocks(sd: Mapping[str, Tensor], prefix: str) -> int:
    """``1 + max i`` over the keys ``prefix.i.*`` of a state dict (0 if none)."""
    pat = re.compile(re.escape(prefix) + r"\.(\d+)\.")
    idx = [int(m.group(1)) for k in sd for m in [pat.match(k)] if m]
    return max(idx) + 1 if idx else 0


def scale_of_width(c: int) -> int:
    scale = SCALE_OF_WIDTH.get(c)
    if scale is None:
        raise CheckpointError(f"coupling width {c} does not match x2, x4 or x8")
    return scale


@register("sain")
class SAIN(RescalingModel):
    """SAIN network. See :mod:`sain.models.base` for the call contract.

    Args:
        scale: 2 or 4 (8 works but is not from the paper).
        e_blocks, v_blocks: numbers of enhanced / vanilla blocks (paper defaults if None).
        gmm_components: mixture components K of the latent model.
    """

    objective = "sain"

    def __init__(
        self, scale: int = 2, e_blocks: int | None = None, v_blocks: int | None = None, gmm_components: int = 5
    ):
        super().__init__(scale)
        de, dv = DEFAULT_BLOCKS[scale]
        self.e_blocks = de if e_blocks is None else int(e_blocks)
        self.v_blocks = dv if v_blocks is None else int(v_blocks)
        if self.e_blocks < 1 or self.v_blocks < 0:
            raise ValueError("need at least one E-block and a non-negative number of V-blocks")
        self.gmm_components = gmm_components
        c = 3
        haar = []
        for _ in range(self.levels):
            haar.append(HaarDownsampling(c))
            c *= 4
        self.channels = c
        self.haar_operations = nn.ModuleList(haar)
        self.down_operations = nn.ModuleList(EnhancedInvBlock(c) for _ in range(self.e_blocks))
        self.comp_operations = nn.ModuleList(InvBlock(c) for _ in range(self.v_blocks))
        self.gmm = GaussianMixture(gmm_components)

    def config(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "e_blocks": self.e_blocks,
            "v_blocks": self.v_blocks,
            "gmm_components": self.gmm_components,
        }

    @classmethod
    def infer_config(cls, sd: Mapping[str, Tensor]) -> dict[str, Any] | None:
        if not any(k.startswith("down_operations.") for k in sd) or any(k.startswith("quality_embedding.") for k in sd):
            return None  # (a SAIN-QF state dict has the embedding too)
        w = sd.get("down_operations.0.F.conv1.weight")
        if w is None:
            raise CheckpointError("SAIN checkpoint lacks down_operations.0.F.conv1.weight")
        k = sd["gmm.gmm_para"].shape[1] if "gmm.gmm_para" in sd else 5
        return {
            "scale": scale_of_width(w.shape[1] + 3),
            "e_blocks": count_blocks(sd, "down_operations"),
            "v_blocks": count_blocks(sd, "comp_operations"),
            "gmm_components": int(k),
        }

    def receptive_radius(self, direction: str) -> int:
        ops = [*self.haar_operations, *self.down_operations, *self.comp_operations]
        return chain_radius(ops, direction, self.scale, sends_enhanced_lr=True)

    def forward(self, x: Tensor, return_logdet: bool = False):
        """HR ``x`` (N, 3, H, W) -> ``(y, lr)`` (+ ``logdet`` (N,) if asked)."""
        self._check_hr(x)
        logdet = x.new_zeros(x.shape[0])
        out = x
        for op in self.haar_operations:
            out, ld = op(out)
            logdet = logdet + ld
        lr = out[:, :3]
        for op in self.down_operations:
            out, lr, ld = op(out)
            logdet = logdet + ld
        for op in self.comp_operations:
            out, ld = op(out)
            logdet = logdet + ld
        return (out, lr, logdet) if return_logdet else (out, lr)

    def downscale(self, hr: Tensor) -> Tensor:
        """HR -> the LR to send: Haar and E-blocks only (the V-blocks do not change it, nor
        do the last E-block's F, G and H: of that block only ``x1 + E(x2)`` is computed)."""
        self._check_hr(hr)
        out = hr
        for op in self.haar_operations:
            out, _ = op(out)
        for op in self.down_operations[:-1]:
            out, _, _ = op(out)
        last: EnhancedInvBlock = self.down_operations[-1]  # type: ignore[assignment]
        return last.send_lr(out)

    def inverse(self, y: Tensor, return_logdet: bool = False):
        """``y`` (N, 3*s^2, h, w) -> ``(x, lr)``: HR and the recovered high-quality LR."""
        self._check_y(y)
        logdet = y.new_zeros(y.shape[0])
        out = y
        for op in reversed(self.comp_operations):
            out, ld = op(out, rev=True)
            logdet = logdet + ld
        lr = None
        for op in reversed(self.down_operations):
            out, block_lr, ld = op(out, rev=True)
            if lr is None:
                lr = block_lr  # the last E-block's inverse LR
            logdet = logdet + ld
        if lr is None:
            lr = out[:, :3]
        for op in reversed(self.haar_operations):
            out, ld = op(out, rev=True)
            logdet = logdet + ld
        return (out, lr, logdet) if return_logdet else (out, lr)

    def sample_latent(self, lr: Tensor, generator: torch.Generator | None = None, chunk: int | None = None) -> Tensor:
        """A GMM sample for z, (N, 3*(s^2-1), h, w), same dtype/device as ``lr``.

        With ``chunk`` and a CPU (or no) generator the same sample is drawn in pieces
        (:meth:`GaussianMixture.sample_chunked`, no gradient)."""
        self._check_lr(lr)
        n, _, h, w = lr.shape
        shape = (n, self.latent_channels, h, w)
        if chunk is not None and (generator is None or generator.device.type == "cpu"):
            return self.gmm.sample_chunked(shape, generator, chunk).to(device=lr.device, dtype=lr.dtype)
        return self.gmm.sample(shape, generator=generator, dtype=lr.dtype, device=lr.device)
