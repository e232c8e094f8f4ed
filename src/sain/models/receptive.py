"""Receptive radius of a chain of Haar steps and couplings (the exact tile margin).

Every operation of SAIN and IRN is local: a Haar step works on aligned s x s blocks and a
coupling subnet sees ``subnet.receptive_radius`` pixels at its resolution (5 for a dense
block of five 3x3 convolutions). :func:`chain_radius` tracks, through the couplings, the
radius of the 3-channel part ``r1`` and of the high-frequency part ``r2``; a subnet adds
its radius times the size of a pixel at its level (2 HR pixels after one Haar step, 4
after two); Haar steps mix the two parts.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from .coupling import EnhancedInvBlock, InvBlock
from .haar import HaarDownsampling

__all__ = ["chain_radius", "subnet_radius"]


def subnet_radius(net: object) -> int:
    """A subnet's radius at its own resolution (its ``receptive_radius`` attribute)."""
    r = getattr(net, "receptive_radius", None)
    if not isinstance(r, int):
        raise ValueError(f"subnet {type(net).__name__} has no integer receptive_radius: cannot tile")
    return r


def chain_radius(ops: Sequence[nn.Module], direction: str, scale: int, sends_enhanced_lr: bool) -> int:
    """Radius in HR pixels of ``ops`` (Haar steps and couplings in forward order).

    Args:
        direction: ``"down"`` (HR -> the LR to send) or ``"up"`` (LR + z -> HR).
        scale: the network's scale (the pixel size at the deepest level).
        sends_enhanced_lr: the LR sent is the last E-block's ``x1 + E(x2)`` (SAIN), not the
            first 3 output channels (IRN).
    """
    if direction not in ("down", "up"):
        raise ValueError(f"direction must be 'down' or 'up', got {direction!r}")
    for op in ops:
        if not isinstance(op, (HaarDownsampling, InvBlock)):
            raise ValueError(f"cannot compute the receptive radius of a {type(op).__name__}")
    r1 = r2 = 0
    if direction == "down":
        unit, lr_radius = 1, 0
        for op in ops:
            if isinstance(op, HaarDownsampling):
                r1 = r2 = max(r1, r2)
                unit *= 2
                continue
            d = subnet_radius(op.F) * unit
            if isinstance(op, EnhancedInvBlock):  # LR = x1 + E(x2); y1 = LR - F(x2)
                lr_radius = max(r1, r2 + subnet_radius(op.E) * unit)
                r1 = max(lr_radius, r2 + d)
            else:  # y1 = x1 + F(x2)
                r1 = max(r1, r2 + d)
            r2 = max(r2, r1 + max(subnet_radius(op.G), subnet_radius(op.H)) * unit)
        return lr_radius if sends_enhanced_lr else r1
    unit = scale
    for op in reversed(ops):
        if isinstance(op, HaarDownsampling):
            r1 = r2 = max(r1, r2)
            unit //= 2
            continue
        # x2 = (y2 - G(y1)) * exp(-s(y1)); x1 = y1 - F(x2)  (E-block: LR = y1 + F(x2); x1 = LR - E(x2))
        r2 = max(r2, r1 + max(subnet_radius(op.G), subnet_radius(op.H)) * unit)
        d = subnet_radius(op.F)
        if isinstance(op, EnhancedInvBlock):
            d = max(d, subnet_radius(op.E))
        r1 = max(r1, r2 + d * unit)
    return max(r1, r2)
