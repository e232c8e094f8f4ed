"""8-bit quantisation with a straight-through gradient.

The LR image a rescaler sends is stored as 8-bit RGB, so training rounds it::

    x (float) --clamp [0, 1]--> --round(x * 255) / 255--> q      (forward)
    dL/dx = dL/dq                                                 (backward: identity)

The backward pass is the identity everywhere, including where the forward pass
clamped, exactly like IRN's ``Quantization`` autograd function.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["quantize"]


class _QuantizeSTE(torch.autograd.Function):
    """Exact 8-bit rounding forward, identity backward.

    A Function (rather than ``x + (q - x).detach()``) so that the forward values
    are exactly ``k / 255``, without the last-bit error of the add/subtract.
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        return torch.round(x.clamp(0.0, 1.0) * 255.0) / 255.0

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> Tensor:  # type: ignore[override]
        return grad_output


def quantize(x: Tensor) -> Tensor:
    """Round an image to 8 bits with an identity (straight-through) gradient.

    Args:
        x: Floating-point tensor of any shape, nominally in [0, 1].

    Shape:
        - x: (*)
        - output: (*), same as ``x``.

    Returns:
        ``round(clamp(x, 0, 1) * 255) / 255`` in the forward pass, with the
        gradient of the identity in the backward pass. ``x`` is not modified.

    Example:
        >>> x = torch.tensor([-0.1, 0.5, 0.7, 1.2], requires_grad=True)
        >>> q = quantize(x)
        >>> (q * 255).round().tolist()
        [0.0, 128.0, 178.0, 255.0]
        >>> q.sum().backward(); x.grad.tolist()
        [1.0, 1.0, 1.0, 1.0]
    """
    if not torch.is_floating_point(x):
        raise TypeError(f"quantize expects a floating-point tensor, got {x.dtype}")
    return _QuantizeSTE.apply(x)
