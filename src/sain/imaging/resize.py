"""MATLAB-compatible bicubic ``imresize`` in pure, differentiable PyTorch.

This reproduces MATLAB's ``imresize(img, scale)`` with its default ``'bicubic'``
method, the resampler the SAIN paper (and IRN, BasicSR before it) uses to make
reference low-resolution images and for the bicubic baseline:

* cubic convolution kernel with ``a = -0.5`` (Keys), support ``[-2, 2]``;
* when downscaling with antialiasing the kernel is stretched by ``1 / scale``
  (``h(x) = scale * cubic(scale * x)``, width ``4 / scale``);
* output pixel ``i`` (1-based) samples the input at
  ``u = i / scale + 0.5 * (1 - 1 / scale)``;
* the weights of each output pixel are normalised to sum to one, and the
  input is extended by half-sample symmetric padding
  (``[1, 2, ..., n, n, n-1, ..., 1]``), exactly like MATLAB's private
  ``contributions`` function, which also drops taps whose weight is zero for
  every output pixel;
* the dimension with the smaller scale factor is resized first.

Nothing is clamped or rounded: floating-point input gives floating-point output,
like MATLAB on ``double`` images. OpenCV's and PyTorch's bicubic modes differ
from this (no antialiasing, ``a = -0.75``, other border rules) by up to 0.2 dB
on the benchmark; do not substitute them.

Each 1-D resize is a gather of ``P`` taps followed by a weighted sum, so the
cost is ``O(P * output size)`` and memory stays at about two output tensors.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

__all__ = ["imresize", "bicubic_down", "bicubic_up"]

_KERNEL_WIDTH = 4.0  # support of the cubic kernel, [-2, 2]


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys cubic convolution kernel with ``a = -0.5`` (MATLAB's ``cubic``)."""
    absx = np.abs(x)
    absx2 = absx**2
    absx3 = absx**3
    return (1.5 * absx3 - 2.5 * absx2 + 1) * (absx <= 1) + (-0.5 * absx3 + 2.5 * absx2 - 4 * absx + 2) * (
        (absx > 1) & (absx <= 2)
    )


@lru_cache(maxsize=64)
def _contributions(in_length: int, out_length: int, scale: float, antialias: bool) -> tuple[np.ndarray, np.ndarray]:
    """Port of MATLAB's ``contributions`` (imresize.m), in float64.

    Returns:
        ``(weights, indices)``, both ``(out_length, P)``; ``indices`` are
        0-based input positions after symmetric padding. Read-only arrays.
    """
    if scale < 1 and antialias:
        kernel_width = _KERNEL_WIDTH / scale

        def h(x: np.ndarray) -> np.ndarray:
            return scale * _cubic(scale * x)

    else:
        kernel_width = _KERNEL_WIDTH
        h = _cubic

    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    taps = int(math.ceil(kernel_width)) + 2
    ind = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]
    weights = h(u[:, None] - ind)
    weights = weights / weights.sum(axis=1, keepdims=True)
    # Half-sample symmetric extension: aux = [1..n, n..1], 1-based like MATLAB.
    aux = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    indices = aux[np.mod(ind.astype(np.int64) - 1, aux.size)]
    keep = np.any(weights != 0, axis=0)
    weights = np.ascontiguousarray(weights[:, keep])
    indices = np.ascontiguousarray(indices[:, keep])
    weights.flags.writeable = False
    indices.flags.writeable = False
    return weights, indices


@lru_cache(maxsize=32)
def _weights_on(
    in_length: int,
    out_length: int,
    scale: float,
    antialias: bool,
    dtype: torch.dtype,
    device: torch.device,
) -> tuple[Tensor, Tensor]:
    """``_contributions`` as tensors: weights ``(P, out, 1)`` in ``dtype``, indices ``(P, out)``."""
    weights, indices = _contributions(in_length, out_length, scale, antialias)
    # Cached tensors must be ordinary tensors even when first built under
    # torch.inference_mode(), or later autograd use of them would fail.
    with torch.inference_mode(False):
        w = torch.tensor(weights.T[:, :, None], dtype=dtype, device=device)
        idx = torch.tensor(indices.T, dtype=torch.long, device=device)
    return w, idx


def _resize_dim(x: Tensor, dim: int, out_length: int, scale: float, antialias: bool) -> Tensor:
    """Resize ``x`` (``(..., H, W)``) along ``dim`` (-2 or -1)."""
    w, idx = _weights_on(x.shape[dim], out_length, scale, antialias, x.dtype, x.device)
    if dim == -1:
        x = x.transpose(-1, -2)
    out = None
    for k in range(idx.shape[0]):  # P taps, P = ceil(4 / scale) + 2 at most
        term = x.index_select(-2, idx[k]) * w[k]
        out = term if out is None else out + term
    assert out is not None
    if dim == -1:
        out = out.transpose(-1, -2)
    return out


def _output_length(in_length: int, scale: float) -> int:
    """MATLAB's ``ceil(scale * in_length)``, robust to ``1/3 * 9 = 3.0000000000000004``."""
    v = in_length * scale
    r = round(v)
    return int(r) if abs(v - r) < 1e-9 * max(1.0, abs(v)) else math.ceil(v)


def imresize(
    x: Tensor,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    antialias: bool = True,
) -> Tensor:
    """Resize images like MATLAB's ``imresize(x, scale)`` (bicubic, the default).

    Exactly one of ``scale`` and ``size`` is given. With ``scale`` the output is
    ``ceil(H * scale) x ceil(W * scale)`` and the kernel uses ``scale`` itself;
    with ``size`` each dimension uses ``scale = out / in`` (MATLAB's
    ``imresize(x, [h w])``). The result is differentiable with respect to ``x``;
    no clamping or rounding is applied.

    Args:
        x: float images, any float dtype, any device, values usually in [0, 1].
        scale: positive scale factor (0.5 halves, 2 doubles, 0.75, ...).
        size: target ``(H_out, W_out)``.
        antialias: stretch the kernel when downscaling (MATLAB's default, True).

    Shape:
        - x: ``(N, C, H, W)`` or ``(C, H, W)``.
        - output: ``(N, C, H_out, W_out)`` or ``(C, H_out, W_out)``.

    Returns:
        The resized images, same dtype and device as ``x``.

    Raises:
        ValueError: on a non-3/4-D or non-float input, a non-positive scale or
            size, or when not exactly one of ``scale`` and ``size`` is given.

    Example:
        >>> x = torch.rand(1, 3, 8, 8)
        >>> imresize(x, 0.5).shape
        torch.Size([1, 3, 4, 4])
        >>> imresize(x, size=(5, 12)).shape
        torch.Size([1, 3, 5, 12])
    """
    if not isinstance(x, Tensor):
        raise ValueError(f"imresize expects a torch.Tensor, got {type(x).__name__}")
    if x.dim() not in (3, 4):
        raise ValueError(f"imresize expects a (N, C, H, W) or (C, H, W) tensor, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"imresize expects a floating-point tensor, got {x.dtype}")
    if (scale is None) == (size is None):
        raise ValueError("imresize needs exactly one of `scale` and `size`")
    in_h, in_w = int(x.shape[-2]), int(x.shape[-1])
    if in_h < 1 or in_w < 1:
        raise ValueError(f"imresize got an empty image of size {in_h}x{in_w}")
    if scale is not None:
        scale = float(scale)
        if not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"scale must be a positive finite number, got {scale}")
        out_h, out_w = _output_length(in_h, scale), _output_length(in_w, scale)
        scale_h = scale_w = scale
    else:
        assert size is not None
        if len(size) != 2:
            raise ValueError(f"size must be (H_out, W_out), got {size!r}")
        out_h, out_w = int(size[0]), int(size[1])
        if out_h <= 0 or out_w <= 0 or (out_h, out_w) != tuple(size):
            raise ValueError(f"size must be two positive integers, got {size!r}")
        scale_h, scale_w = out_h / in_h, out_w / in_w

    # MATLAB resizes along the dimension with the smaller scale first (rows on ties).
    steps = [(-2, out_h, scale_h), (-1, out_w, scale_w)]
    if scale_w < scale_h:
        steps.reverse()
    out = x
    for dim, length, s in steps:
        out = _resize_dim(out, dim, length, s, antialias)
    return out


def bicubic_down(x: Tensor, s: float) -> Tensor:
    """MATLAB bicubic downscale by factor ``s`` (``imresize(x, 1 / s)``).

    Args:
        x: float images ``(N, C, H, W)`` or ``(C, H, W)``.
        s: downscaling factor, e.g. 2 or 4.

    Returns:
        Images of size ``ceil(H / s) x ceil(W / s)``.
    """
    if s <= 0:
        raise ValueError(f"downscaling factor must be positive, got {s}")
    return imresize(x, 1.0 / s)


def bicubic_up(x: Tensor, s: float) -> Tensor:
    """MATLAB bicubic upscale by factor ``s`` (``imresize(x, s)``).

    Args:
        x: float images ``(N, C, H, W)`` or ``(C, H, W)``.
        s: upscaling factor, e.g. 2 or 4.

    Returns:
        Images of size ``ceil(H * s) x ceil(W * s)``.
    """
    return imresize(x, s)
