"""PSNR and SSIM with the super-resolution evaluation protocol.

Lineage: the MATLAB evaluation scripts of the SR literature as ported by
BasicSR (``basicsr/metrics/psnr_ssim.py``), which IRN and SAIN report with.
This module matches that protocol numerically, except that the Y channel is
kept in float64 throughout (BasicSR goes through float32):

* images are compared on the 0..255 scale in float64, after cropping
  ``crop_border`` pixels (usually the scale factor) from every border;
* ``y_channel=True`` compares ITU-R BT.601 luma
  ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` (R, G, B in [0, 1]), not rounded;
* PSNR is ``10 log10(255^2 / MSE)`` over all compared samples;
* SSIM (Wang et al. 2004) uses an 11x11 Gaussian window with sigma 1.5,
  'valid' filtering (only windows fully inside the image), ``C1 = (0.01 * 255)^2``,
  ``C2 = (0.03 * 255)^2``, and is averaged per channel, then over channels.

It equals scikit-image's ``structural_similarity(..., gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=255)``, which filters with
reflection and then discards the 5-pixel border where reflection mattered.

Inputs may be ``(3, H, W)`` float tensors in [0, 1] or ``(H, W, 3)`` uint8 arrays,
mixed freely. Tensors are *not* quantised here: quantise with
:func:`sain.imaging.to_uint8` first when the protocol calls for 8-bit images.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["psnr", "rgb_to_y", "ssim"]

Image = torch.Tensor | np.ndarray

_SSIM_WINDOW = 11
_SSIM_SIGMA = 1.5
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2
_Y_COEFFS = np.array([65.481, 128.553, 24.966], dtype=np.float64)


def _to_float255(img: Image, name: str = "image") -> np.ndarray:
    """``(3, H, W)`` float tensor in [0, 1] or ``(H, W, 3)`` uint8 -> ``(H, W, 3)`` float64 on 0..255."""
    if isinstance(img, torch.Tensor):
        if not img.is_floating_point() or img.dim() != 3 or img.shape[0] != 3:
            raise ValueError(
                f"{name}: expected a float (3, H, W) tensor in [0, 1], got {img.dtype} of shape {tuple(img.shape)}"
            )
        arr = img.detach().to(device="cpu", dtype=torch.float64).permute(1, 2, 0).numpy()
        return arr * 255.0
    if isinstance(img, np.ndarray):
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"{name}: expected a uint8 (H, W, 3) array, got {img.dtype} of shape {img.shape}")
        return img.astype(np.float64)
    raise ValueError(f"{name}: expected a torch.Tensor or numpy.ndarray, got {type(img).__name__}")


def _luma(rgb255: np.ndarray) -> np.ndarray:
    """BT.601 luma of ``(H, W, 3)`` float64 RGB on 0..255 -> ``(H, W)`` on 0..255."""
    return 16.0 + (rgb255 / 255.0) @ _Y_COEFFS


def rgb_to_y(img: Image) -> np.ndarray:
    """ITU-R BT.601 luma, as in MATLAB's ``rgb2ycbcr`` but not rounded.

    ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` for R, G, B in [0, 1], i.e.
    values in [16, 235] on the 0..255 scale, in float64.

    Args:
        img: RGB image, float tensor in [0, 1] or uint8 array.

    Shape:
        - img: ``(3, H, W)`` tensor or ``(H, W, 3)`` array.
        - output: ``(H, W)``, float64.

    Raises:
        ValueError: on any other input.

    Example:
        >>> float(rgb_to_y(torch.ones(3, 1, 1))[0, 0])
        235.0
    """
    return _luma(_to_float255(img))


def _img_hw(img: Image) -> str:
    h, w = img.shape[1:] if isinstance(img, torch.Tensor) else img.shape[:2]
    return f"{h}x{w}"


def _prepare(img1: Image, img2: Image, crop_border: int, y_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    """Validate, convert to float64 0..255, crop, optionally take luma -> ``(h, w, c)`` pair."""
    a = _to_float255(img1, "img1")
    b = _to_float255(img2, "img2")
    if a.shape != b.shape:
        raise ValueError(f"images differ in size: {a.shape[:2]} vs {b.shape[:2]} (H, W)")
    if isinstance(crop_border, bool) or not isinstance(crop_border, int | np.integer) or crop_border < 0:
        raise ValueError(f"crop_border must be a non-negative integer, got {crop_border!r}")
    if crop_border:
        a = a[crop_border:-crop_border, crop_border:-crop_border]
        b = b[crop_border:-crop_border, crop_border:-crop_border]
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"crop_border={crop_border} leaves no pixels of a {_img_hw(img1)} image")
    if y_channel:
        a, b = _luma(a)[..., None], _luma(b)[..., None]
    return a, b


def psnr(img1: Image, img2: Image, crop_border: int = 0, y_channel: bool = False) -> float:
    """Peak signal-to-noise ratio in dB, BasicSR/MATLAB protocol.

    ``10 log10(255^2 / MSE)`` with the MSE over all compared samples (all three
    RGB channels, or the BT.601 luma with ``y_channel=True``), on the 0..255
    scale in float64, after cropping ``crop_border`` pixels from every border.

    Args:
        img1, img2: ``(3, H, W)`` float tensors in [0, 1] or ``(H, W, 3)`` uint8
            arrays (may be mixed).
        crop_border: pixels removed from each border before comparing.
        y_channel: compare luma instead of RGB.

    Returns:
        PSNR in dB; ``float('inf')`` for identical images.

    Raises:
        ValueError: on mismatched shapes, wrong channel counts or dtypes, or a
            crop that leaves no pixels.

    Example:
        >>> a = np.zeros((4, 4, 3), np.uint8)
        >>> round(psnr(a, a + 1), 4)
        48.1308
    """
    a, b = _prepare(img1, img2, crop_border, y_channel)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0:
        return float("inf")
    return 10.0 * math.log10(255.0**2 / mse)


def _gaussian_kernel_1d(size: int = _SSIM_WINDOW, sigma: float = _SSIM_SIGMA) -> np.ndarray:
    """Normalised 1-D Gaussian (same as ``cv2.getGaussianKernel(11, 1.5)``)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    k = np.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def _filter_valid(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable 2-D correlation of ``(H, W)`` with ``outer(kernel, kernel)``, 'valid' region only."""
    n = kernel.size
    h, w = img.shape
    rows = sum(kernel[i] * img[i : h - n + 1 + i, :] for i in range(n))
    return sum(kernel[j] * rows[:, j : w - n + 1 + j] for j in range(n))


def _ssim_single(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two ``(H, W)`` float64 images on 0..255 (windows fully inside)."""
    k = _gaussian_kernel_1d()
    mu_a = _filter_valid(a, k)
    mu_b = _filter_valid(b, k)
    mu_aa, mu_bb, mu_ab = mu_a * mu_a, mu_b * mu_b, mu_a * mu_b
    var_a = _filter_valid(a * a, k) - mu_aa
    var_b = _filter_valid(b * b, k) - mu_bb
    cov = _filter_valid(a * b, k) - mu_ab
    ssim_map = ((2 * mu_ab + _C1) * (2 * cov + _C2)) / ((mu_aa + mu_bb + _C1) * (var_a + var_b + _C2))
    return float(ssim_map.mean())


def ssim(img1: Image, img2: Image, crop_border: int = 0, y_channel: bool = False) -> float:
    """Structural similarity (Wang et al. 2004), BasicSR/MATLAB protocol.

    11x11 Gaussian window (sigma 1.5), 'valid' filtering, ``C1 = (0.01 * 255)^2``,
    ``C2 = (0.03 * 255)^2``, float64 on the 0..255 scale, after cropping
    ``crop_border`` pixels from every border. With RGB the result is the mean of
    the three per-channel SSIMs; with ``y_channel=True`` it is the SSIM of the
    BT.601 luma.

    Args:
        img1, img2: ``(3, H, W)`` float tensors in [0, 1] or ``(H, W, 3)`` uint8
            arrays (may be mixed).
        crop_border: pixels removed from each border before comparing.
        y_channel: compare luma instead of RGB.

    Returns:
        SSIM, 1.0 for identical images.

    Raises:
        ValueError: on mismatched shapes, wrong channel counts or dtypes, or a
            crop that leaves fewer than 11 pixels in either dimension.

    Example:
        >>> a = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
        >>> ssim(a, a)
        1.0
    """
    a, b = _prepare(img1, img2, crop_border, y_channel)
    if a.shape[0] < _SSIM_WINDOW or a.shape[1] < _SSIM_WINDOW:
        raise ValueError(
            f"SSIM needs at least {_SSIM_WINDOW}x{_SSIM_WINDOW} pixels after cropping, "
            f"got {a.shape[0]}x{a.shape[1]} (crop_border={crop_border})"
        )
    return float(np.mean([_ssim_single(a[..., c], b[..., c]) for c in range(a.shape[2])]))
