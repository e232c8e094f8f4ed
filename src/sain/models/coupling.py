"""Invertible couplings: IRN's vanilla block and SAIN's enhanced block (E-InvBlock).

A coupling splits its C channels into ``x1`` = the first 3 (the LR part) and ``x2`` = the
remaining C-3 (high frequencies). With ``s(y1) = clamp * (2 sigmoid(H(y1)) - 1)``:

Vanilla (IRN)::

    forward:  y1 = x1 + F(x2)                 y2 = x2 * exp(s(y1)) + G(y1)
    inverse:  x2 = (y2 - G(y1)) * exp(-s(y1))  x1 = y1 - F(x2)

Enhanced (SAIN), one more subnet E that yields the high-quality LR in the same pass::

    forward:  LR = x1 + E(x2)   y1 = LR - F(x2)   y2 = x2 * exp(s(y1)) + G(y1)
    inverse:  x2 = (y2 - G(y1)) * exp(-s(y1))   LR = y1 + F(x2)   x1 = LR - E(x2)

Both have log|det J| = sum(s) per sample (forward) and -sum(s) (inverse).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .subnet import DenseBlock, memory_format_of


class _SplitChannels(torch.autograd.Function):
    """``x[:, :k], x[:, k:]`` whose backward writes both gradients into one tensor laid out
    like ``x``. (Autograd's slice backward allocates a zero-filled *contiguous* gradient,
    which turns every gradient of a channels-last network into NCHW, and every later
    layer then pays a transposing copy.)"""

    @staticmethod
    def forward(ctx, x: Tensor, k: int):
        ctx.k, ctx.shape, ctx.fmt = k, x.shape, memory_format_of(x)
        return x[:, :k], x[:, k:]

    @staticmethod
    def backward(ctx, ga, gb):
        ref = ga if ga is not None else gb
        g = torch.empty(ctx.shape, dtype=ref.dtype, device=ref.device, memory_format=ctx.fmt)
        for part, sl in ((ga, slice(None, ctx.k)), (gb, slice(ctx.k, None))):
            if part is None:
                g[:, sl].zero_()
            else:
                g[:, sl] = part
        return g, None


def split_channels(x: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """``(x[:, :k], x[:, k:])``, keeping the memory format of ``x`` for the gradient too."""
    if not (torch.is_grad_enabled() and x.requires_grad):
        return x[:, :k], x[:, k:]
    return _SplitChannels.apply(x, k)


class InvBlock(nn.Module):
    """Vanilla affine coupling ``(N, C, h, w) <-> (N, C, h, w)``; ``forward`` returns ``(out, logdet)``."""

    def __init__(self, channels: int, split: int = 3, clamp: float = 1.0):
        super().__init__()
        if not 0 < split < channels:
            raise ValueError(f"split must be in (0, {channels}), got {split}")
        self.channels, self.split, self.clamp = channels, split, clamp
        c1, c2 = split, channels - split
        self.F = DenseBlock(c2, c1)
        self.G = DenseBlock(c1, c2)
        self.H = DenseBlock(c1, c2)

    def _s(self, y1: Tensor) -> Tensor:
        return self.clamp * (torch.sigmoid(self.H(y1)) * 2 - 1)

    def _check(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"coupling expects (N, {self.channels}, h, w), got {tuple(x.shape)}")

    def forward(self, x: Tensor, rev: bool = False) -> tuple[Tensor, Tensor]:
        self._check(x)
        a, b = split_channels(x, self.split)
        if not rev:
            y1 = a + self.F(b)
            s = self._s(y1)
            y2 = b * torch.exp(s) + self.G(y1)
            return torch.cat((y1, y2), 1), s.flatten(1).sum(1)
        s = self._s(a)
        x2 = (b - self.G(a)) * torch.exp(-s)
        x1 = a - self.F(x2)
        return torch.cat((x1, x2), 1), -s.flatten(1).sum(1)


class EnhancedInvBlock(InvBlock):
    """SAIN's E-InvBlock; ``forward`` returns ``(out, lr, logdet)``.

    ``lr`` is the forward's high-quality LR estimate ``x1 + E(x2)``, or, for the inverse,
    the recovered high-quality LR ``y1 + F(x2)``.
    """

    def __init__(self, channels: int, split: int = 3, clamp: float = 1.0):
        super().__init__(channels, split, clamp)
        self.E = DenseBlock(channels - split, split)

    def forward(self, x: Tensor, rev: bool = False) -> tuple[Tensor, Tensor, Tensor]:  # type: ignore[override]
        self._check(x)
        a, b = split_channels(x, self.split)
        if not rev:
            lr = a + self.E(b)
            y1 = lr - self.F(b)
            s = self._s(y1)
            y2 = b * torch.exp(s) + self.G(y1)
            return torch.cat((y1, y2), 1), lr, s.flatten(1).sum(1)
        s = self._s(a)
        x2 = (b - self.G(a)) * torch.exp(-s)
        lr = a + self.F(x2)
        x1 = lr - self.E(x2)
        return torch.cat((x1, x2), 1), lr, -s.flatten(1).sum(1)
