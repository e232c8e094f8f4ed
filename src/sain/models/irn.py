"""IRN: the symmetric Invertible Rescaling Net (Xiao et al., ECCV 2020), SAIN's baseline.

    x2: HR ─Haar─> [InvBlock]*8 ─> (LR = y[:, :3], z)
    x4: HR ─Haar─> [InvBlock]*8 ─Haar─> [InvBlock]*8 ─> (LR, z)

The upscaling latent is z ~ N(0, I). Module names match the reference checkpoints
(``operations.{n}`` in network order).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import CheckpointError
from .base import RescalingModel
from .coupling import InvBlock
from .haar import HaarDownsampling
from .receptive import chain_radius
from .registry import register
from .sain import count_blocks, scale_of_width


@register("irn")
class IRN(RescalingModel):
    """IRN network. See :mod:`sain.models.base` for the call contract."""

    objective = "irn"

    def __init__(self, scale: int = 2, blocks_per_level: int = 8):
        super().__init__(scale)
        if blocks_per_level < 1:
            raise ValueError("blocks_per_level must be >= 1")
        self.blocks_per_level = int(blocks_per_level)
        ops: list[nn.Module] = []
        c = 3
        for _ in range(self.levels):
            ops.append(HaarDownsampling(c))
            c *= 4
            ops.extend(InvBlock(c) for _ in range(self.blocks_per_level))
        self.channels = c
        self.operations = nn.ModuleList(ops)

    def config(self) -> dict[str, Any]:
        return {"scale": self.scale, "blocks_per_level": self.blocks_per_level}

    @classmethod
    def infer_config(cls, sd: Mapping[str, Tensor]) -> dict[str, Any] | None:
        if not any(k.startswith("operations.") for k in sd):
            return None
        n = count_blocks(sd, "operations")
        blocks = [i for i in range(n) if f"operations.{i}.F.conv1.weight" in sd]
        if not blocks:
            raise CheckpointError("IRN checkpoint has no coupling blocks")
        widths = sorted({sd[f"operations.{i}.F.conv1.weight"].shape[1] + 3 for i in blocks})
        scale = scale_of_width(max(widths))
        levels = {2: 1, 4: 2, 8: 3}[scale]
        if len(blocks) % levels:
            raise CheckpointError(f"{len(blocks)} IRN blocks cannot split evenly over {levels} levels")
        return {"scale": scale, "blocks_per_level": len(blocks) // levels}

    @classmethod
    def from_pretrained(cls, source: RescalingModel, config: Mapping[str, Any]) -> IRN:
        """``run.init``: an IRN from an IRN of the same configuration, or from a trained IRN
        of a smaller scale with the same blocks per level, whose levels become this one's
        first levels (irn-x2 starts irn-x4). The new levels' blocks start as the identity
        (zero-initialised last convolutions), so at step 0 the x4 LR is exactly the 2x2 mean of
        the x2 model's LR."""
        if type(source) is not IRN or source.scale == config.get("scale", 2):
            return super().from_pretrained(source, config)  # type: ignore[return-value]
        model = cls.from_config(config)
        assert isinstance(model, IRN)
        if source.scale > model.scale or source.blocks_per_level != model.blocks_per_level:
            raise CheckpointError(
                f"cannot initialise irn {dict(config)} from irn {source.config()}: "
                "needs a smaller scale and the same blocks_per_level"
            )
        for mine, theirs in zip(model.operations, source.operations, strict=False):
            mine.load_state_dict(theirs.state_dict())
        return model

    def receptive_radius(self, direction: str) -> int:
        return chain_radius(list(self.operations), direction, self.scale, sends_enhanced_lr=False)

    def forward(self, x: Tensor, return_logdet: bool = False):
        self._check_hr(x)
        logdet = x.new_zeros(x.shape[0])
        out = x
        for op in self.operations:
            out, ld = op(out)
            logdet = logdet + ld
        lr = out[:, :3]
        return (out, lr, logdet) if return_logdet else (out, lr)

    def inverse(self, y: Tensor, return_logdet: bool = False):
        self._check_y(y)
        logdet = y.new_zeros(y.shape[0])
        out = y
        for op in reversed(self.operations):
            out, ld = op(out, rev=True)
            logdet = logdet + ld
        lr = y[:, :3]
        return (out, lr, logdet) if return_logdet else (out, lr)

    def sample_latent(self, lr: Tensor, generator: torch.Generator | None = None, chunk: int | None = None) -> Tensor:
        """A standard-normal z, (N, 3*(s^2-1), h, w); drawn in float32 on the generator's device
        (one draw: its temporaries are the sample itself, so ``chunk`` changes nothing)."""
        self._check_lr(lr)
        n, _, h, w = lr.shape
        gdev = generator.device if generator is not None else lr.device
        z = torch.randn(n, self.latent_channels, h, w, generator=generator, device=gdev)
        return z.to(device=lr.device, dtype=lr.dtype)
