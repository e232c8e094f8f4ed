"""The whole rescaling pipeline on tensors: HR -> LR -> 8 bits -> codec -> restored HR.

    hr ─model.downscale─> LR ─Q (8-bit)─> codec (JPEG/WebP/AVIF/PNG) ─model.upscale─> HR'

The bicubic baseline replaces both network arrows by MATLAB-style bicubic resizing.
These functions are shared by validation during training, ``sain eval`` and the
command-line encoder/decoder, so all of them measure exactly the same thing.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .codecs import codec_roundtrip, quantize_u8
from .imaging import bicubic_down, bicubic_up
from .models import RescalingModel


@dataclass
class RoundTrip:
    """Result of :func:`roundtrip` for a batch: all tensors in [0, 1], (N, 3, ., .)."""

    lr: Tensor          # the 8-bit LR that is compressed and sent
    received: Tensor    # the decoded LR after the codec
    restored: Tensor    # the restored HR, clamped to [0, 1] and rounded to 8 bits
    sizes: list[int]    # compressed bytes of each LR


def _prepare(x: Tensor, like: Tensor) -> Tensor:
    """``x`` on the model's device and dtype, channels-last (about 20% faster convolutions on CPU)."""
    return x.to(like.device, like.dtype).contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def downscale(model: RescalingModel | None, hr: Tensor, scale: int | None = None) -> Tensor:
    """HR (N, 3, H, W) -> the 8-bit LR to send; ``model=None`` means MATLAB bicubic at ``scale``."""
    if model is None:
        if scale is None:
            raise ValueError("the bicubic baseline needs an explicit scale")
        return quantize_u8(bicubic_down(hr, scale))
    p = next(model.parameters())
    return quantize_u8(model.downscale(_prepare(hr, p)).float().cpu())


@torch.no_grad()
def upscale(model: RescalingModel | None, lr: Tensor, scale: int, seed: int | None = 0) -> Tensor:
    """Received LR (N, 3, h, w) -> restored 8-bit HR; ``model=None`` means MATLAB bicubic."""
    if model is None:
        return quantize_u8(bicubic_up(lr, scale))
    p = next(model.parameters())
    gen = None
    if seed is not None:
        gen = torch.Generator().manual_seed(seed)
    out = model.upscale(_prepare(lr, p), generator=gen)
    return quantize_u8(out.float().cpu())


@torch.no_grad()
def roundtrip(model: RescalingModel | None, hr: Tensor, fmt: str = "jpeg", quality: int = 75,
              scale: int | None = None, seed: int | None = 0) -> RoundTrip:
    """Downscale, compress with a real codec, decode and upscale a batch of HR images.

    Args:
        model: a rescaling network, or ``None`` for the bicubic baseline.
        hr: (N, 3, H, W) in [0, 1], H and W multiples of the scale.
        fmt, quality: the real codec and its quality (1..100).
        scale: required for the bicubic baseline; defaults to ``model.scale``.
        seed: seed of the latent sample (``None``: unseeded).
    """
    if model is not None:
        scale = model.scale
    if scale is None:
        raise ValueError("the bicubic baseline needs an explicit scale")
    lr = downscale(model, hr, scale)
    received, sizes = codec_roundtrip(lr, fmt, quality)
    restored = upscale(model, received, scale, seed)
    return RoundTrip(lr=lr, received=received, restored=restored, sizes=sizes)
