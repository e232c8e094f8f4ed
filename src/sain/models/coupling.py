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

Subnets are built by a ``subnet_constructor(c_in, c_out)`` (default: :class:`DenseBlock`),
in the spirit of FrEIA's ``subnet_constructor`` / ``dims_c``. A *conditioned* coupling
(``cond_dim > 0``) builds them as ``subnet_constructor(c_in, c_out, cond_dim)`` and calls
them as ``subnet(x, cond)`` with a condition ``cond`` (N, cond_dim) given to ``forward``
(e.g. an embedding of the codec quality). The condition is an input of every subnet, not
a transformed variable, so a conditioned coupling is exactly invertible for each ``cond``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .subnet import DenseBlock, memory_format_of

#: ``(c_in, c_out) -> module`` (or ``(c_in, c_out, cond_dim)`` for a conditioned coupling).
SubnetConstructor = Callable[..., nn.Module]


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

    def __init__(
        self,
        channels: int,
        split: int = 3,
        clamp: float = 1.0,
        subnet_constructor: SubnetConstructor | None = None,
        cond_dim: int = 0,
    ):
        super().__init__()
        if not 0 < split < channels:
            raise ValueError(f"split must be in (0, {channels}), got {split}")
        if cond_dim < 0:
            raise ValueError(f"cond_dim must be >= 0, got {cond_dim}")
        self.channels, self.split, self.clamp, self.cond_dim = channels, split, clamp, cond_dim
        self._make = subnet_constructor or DenseBlock
        c1, c2 = split, channels - split
        self.F = self._subnet(c2, c1)
        self.G = self._subnet(c1, c2)
        self.H = self._subnet(c1, c2)

    def _subnet(self, c_in: int, c_out: int) -> nn.Module:
        return self._make(c_in, c_out, self.cond_dim) if self.cond_dim else self._make(c_in, c_out)

    def _run(self, net: nn.Module, x: Tensor, cond: Tensor | None) -> Tensor:
        return net(x) if cond is None else net(x, cond)

    def _s(self, y1: Tensor, cond: Tensor | None = None) -> Tensor:
        return self.clamp * (torch.sigmoid(self._run(self.H, y1, cond)) * 2 - 1)

    def _check(self, x: Tensor, cond: Tensor | None = None) -> None:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"coupling expects (N, {self.channels}, h, w), got {tuple(x.shape)}")
        if self.cond_dim and (cond is None or cond.dim() != 2 or cond.shape[1] != self.cond_dim):
            got = None if cond is None else tuple(cond.shape)
            raise ValueError(f"this coupling is conditioned: cond must be (N, {self.cond_dim}), got {got}")
        if not self.cond_dim and cond is not None:
            raise ValueError("this coupling takes no condition (cond_dim = 0)")

    def forward(self, x: Tensor, rev: bool = False, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self._check(x, cond)
        a, b = split_channels(x, self.split)
        if not rev:
            y1 = a + self._run(self.F, b, cond)
            s = self._s(y1, cond)
            y2 = b * torch.exp(s) + self._run(self.G, y1, cond)
            return torch.cat((y1, y2), 1), s.flatten(1).sum(1)
        s = self._s(a, cond)
        x2 = (b - self._run(self.G, a, cond)) * torch.exp(-s)
        x1 = a - self._run(self.F, x2, cond)
        return torch.cat((x1, x2), 1), -s.flatten(1).sum(1)


class EnhancedInvBlock(InvBlock):
    """SAIN's E-InvBlock; ``forward`` returns ``(out, lr, logdet)``.

    ``lr`` is the forward's high-quality LR estimate ``x1 + E(x2)``, or, for the inverse,
    the recovered high-quality LR ``y1 + F(x2)``.
    """

    def __init__(
        self,
        channels: int,
        split: int = 3,
        clamp: float = 1.0,
        subnet_constructor: SubnetConstructor | None = None,
        cond_dim: int = 0,
    ):
        super().__init__(channels, split, clamp, subnet_constructor, cond_dim)
        self.E = self._subnet(channels - split, split)

    def send_lr(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Only the forward's ``lr = x1 + E(x2)``: what the last E-block contributes to the
        thumbnail (its F, G and H do not change it)."""
        self._check(x, cond)
        a, b = split_channels(x, self.split)
        return a + self._run(self.E, b, cond)

    def forward(  # type: ignore[override]
        self,
        x: Tensor,
        rev: bool = False,
        cond: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        self._check(x, cond)
        a, b = split_channels(x, self.split)
        if not rev:
            lr = a + self._run(self.E, b, cond)
            y1 = lr - self._run(self.F, b, cond)
            s = self._s(y1, cond)
            y2 = b * torch.exp(s) + self._run(self.G, y1, cond)
            return torch.cat((y1, y2), 1), lr, s.flatten(1).sum(1)
        s = self._s(a, cond)
        x2 = (b - self._run(self.G, a, cond)) * torch.exp(-s)
        lr = a + self._run(self.F, x2, cond)
        x1 = lr - self._run(self.E, x2, cond)
        return torch.cat((x1, x2), 1), lr, -s.flatten(1).sum(1)
