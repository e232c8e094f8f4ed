"""8-bit quantisation: the one rounding rule of the package, with and without a gradient.

The LR image a rescaler sends is stored as 8-bit RGB, so training rounds it::

    x (float) --clamp [0, 1]--> --round(x * 255) / 255--> q      (forward)
    dL/dx = dL/dq                                                 (backward: identity)

The backward pass is the identity everywhere, including where the forward pass
clamped, exactly like IRN's ``Quantization`` autograd function. With ``clamp_grad=True``
only the rounding is straight-through: the gradient is zero where the forward pass
clamped (the clamp's own gradient), so a training loss that reaches the LR through ``Q``
no longer rewards values beyond [0, 1] that the 8-bit image cannot hold.

Inference uses the same rounding without the gradient trick: :func:`to_levels` gives the
8-bit levels ``round(clamp(x, 0, 1) * 255)``; :func:`quantize_u8` (``levels / 255``),
:func:`sain.imaging.to_uint8` and the real codecs are built on it. ``torch.round`` rounds
halves to even everywhere.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["quantize", "quantize_u8", "to_levels"]


def to_levels(x: Tensor) -> Tensor:
    """The 8-bit levels of an image: ``round(clamp(x, 0, 1) * 255)``, as integer-valued floats.

    Shape:
        - x: (*), floating point, nominally in [0, 1].
        - output: (*), same dtype; values 0, 1, ..., 255 (``.to(torch.uint8)`` is exact).
    """
    return x.clamp(0, 1).mul_(255).round_()  # one new tensor: on a photo each is ~150 MB


def quantize_u8(x: Tensor) -> Tensor:
    """Clamp to [0, 1] and round to 8 bits, for inference (no gradient trick): ``k / 255``.

    Shape:
        - x: (*), floating point.
        - output: (*), same dtype, values ``to_levels(x) / 255``.
    """
    return to_levels(x).div_(255)


class _QuantizeSTE(torch.autograd.Function):
    """Exact 8-bit rounding forward, identity backward.

    A Function (rather than ``x + (q - x).detach()``) so that the forward values
    are exactly ``k / 255``, without the last-bit error of the add/subtract.
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return quantize_u8(x)

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> Tensor:
        return grad_output


class _QuantizeClampGrad(torch.autograd.Function):
    """Exact 8-bit rounding forward; backward: the clamp's gradient (1 inside [0, 1], 0
    outside), the rounding straight-through."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.save_for_backward((x >= 0) & (x <= 1))
        return quantize_u8(x)

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> Tensor:
        (inside,) = ctx.saved_tensors
        return grad_output * inside.to(grad_output.dtype)


def quantize(x: Tensor, clamp_grad: bool = False) -> Tensor:
    """Round an image to 8 bits with an identity (straight-through) gradient.

    Args:
        x: Floating-point tensor of any shape, nominally in [0, 1].
        clamp_grad: zero gradient where ``x`` is outside [0, 1] (default: identity
            everywhere, the papers' rule).

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
        >>> x.grad = None; quantize(x, clamp_grad=True).sum().backward(); x.grad.tolist()
        [0.0, 1.0, 1.0, 0.0]
    """
    if not torch.is_floating_point(x):
        raise TypeError(f"quantize expects a floating-point tensor, got {x.dtype}")
    return (_QuantizeClampGrad if clamp_grad else _QuantizeSTE).apply(x)
