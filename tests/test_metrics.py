"""Tests for sain.metrics against scikit-image as an independent oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from sain.imaging import from_uint8
from sain.metrics import psnr, rgb_to_y, ssim


def _pair(h: int = 40, w: int = 36, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth-ish uint8 image and a noisy version of it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 128 + 80 * np.sin(xx / 5.0)[..., None] * np.cos(yy / 7.0)[..., None] + rng.normal(0, 10, (h, w, 3))
    a = np.clip(base, 0, 255).round().astype(np.uint8)
    b = np.clip(a + rng.normal(0, 12, a.shape), 0, 255).round().astype(np.uint8)
    return a, b


def _sk_ssim(a: np.ndarray, b: np.ndarray, channel_axis: int | None = None) -> float:
    # skimage filters the whole image with reflection, then averages the SSIM map with a
    # (win_size - 1) / 2 = 5 pixel border removed: exactly the positions whose 11x11 window
    # lies inside the image, i.e. the 'valid' region of the BasicSR/MATLAB protocol.
    return structural_similarity(
        a,
        b,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        channel_axis=channel_axis,
    )


def _y(a: np.ndarray) -> np.ndarray:
    # BT.601 luma written independently: 16 + (65.481 R + 128.553 G + 24.966 B) / 255 on 0..255 inputs.
    a = a.astype(np.float64)
    return 16.0 + (65.481 * a[..., 0] + 128.553 * a[..., 1] + 24.966 * a[..., 2]) / 255.0


# ---------------------------------------------------------------- rgb_to_y


def test_rgb_to_y_reference_values():
    colours = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], dtype=np.uint8)
    y = rgb_to_y(colours)
    assert y.dtype == np.float64 and y.shape == (1, 5)
    np.testing.assert_allclose(y[0], [16.0, 235.0, 16 + 65.481, 16 + 128.553, 16 + 24.966], rtol=0, atol=1e-12)


def test_rgb_to_y_not_rounded_and_tensor_equals_uint8():
    a, _ = _pair(8, 8)
    y = rgb_to_y(a)
    np.testing.assert_allclose(y, _y(a), rtol=0, atol=1e-12)
    assert np.any(np.abs(y - np.round(y)) > 1e-3)
    np.testing.assert_allclose(rgb_to_y(torch.from_numpy(a).permute(2, 0, 1).double() / 255), y, rtol=0, atol=1e-12)


# -------------------------------------------------------------------- PSNR


@pytest.mark.parametrize("y_channel", [False, True])
def test_psnr_matches_skimage(y_channel):
    a, b = _pair()
    ref_a, ref_b = (_y(a), _y(b)) if y_channel else (a.astype(np.float64), b.astype(np.float64))
    expected = peak_signal_noise_ratio(ref_a, ref_b, data_range=255)
    assert psnr(a, b, y_channel=y_channel) == pytest.approx(expected, abs=1e-10)


def test_psnr_reference_value():
    a = np.zeros((4, 4, 3), np.uint8)
    assert psnr(a, a + 1) == pytest.approx(10 * math.log10(255**2), abs=1e-12)  # MSE = 1
    assert psnr(a, a) == float("inf")


def test_psnr_crop_border():
    a, b = _pair()
    c = 4
    expected = peak_signal_noise_ratio(a[c:-c, c:-c].astype(float), b[c:-c, c:-c].astype(float), data_range=255)
    assert psnr(a, b, crop_border=c) == pytest.approx(expected, abs=1e-10)
    # differences confined to the border disappear once it is cropped
    d = a.copy()
    d[:2] = 255 - d[:2]
    d[:, -2:] = 0
    assert psnr(a, d, crop_border=2) == float("inf")
    assert math.isfinite(psnr(a, d, crop_border=1))


# -------------------------------------------------------------------- SSIM


def test_ssim_matches_skimage_on_y():
    a, b = _pair()
    expected = _sk_ssim(_y(a), _y(b))
    assert ssim(a, b, y_channel=True) == pytest.approx(expected, abs=1e-10)


def test_ssim_matches_skimage_on_rgb_as_mean_of_channels():
    a, b = _pair(seed=1)
    af, bf = a.astype(np.float64), b.astype(np.float64)
    expected = _sk_ssim(af, bf, channel_axis=2)
    per_channel = np.mean([_sk_ssim(af[..., c], bf[..., c]) for c in range(3)])
    assert expected == pytest.approx(per_channel, abs=1e-12)
    assert ssim(a, b) == pytest.approx(expected, abs=1e-10)


def test_ssim_crop_border_and_minimum_size():
    a, b = _pair(30, 25)
    c = 7  # leaves 16 x 11: the smallest size with one valid window column
    expected = _sk_ssim(_y(a)[c:-c, c:-c], _y(b)[c:-c, c:-c])
    assert ssim(a, b, crop_border=c, y_channel=True) == pytest.approx(expected, abs=1e-10)
    with pytest.raises(ValueError, match="11"):
        ssim(a, b, crop_border=c + 1)


def test_ssim_identical_and_bounds():
    a, b = _pair()
    assert ssim(a, a) == 1.0
    assert ssim(a, a, y_channel=True) == 1.0
    assert -1 <= ssim(a, b) < 1


# ------------------------------------------------------------ input handling


@pytest.mark.parametrize("metric", [psnr, ssim])
@pytest.mark.parametrize("y_channel", [False, True])
def test_tensor_and_uint8_inputs_agree(metric, y_channel):
    a, b = _pair()
    ref = metric(a, b, crop_border=2, y_channel=y_channel)
    ta = torch.from_numpy(a).permute(2, 0, 1).double() / 255
    tb = torch.from_numpy(b).permute(2, 0, 1).double() / 255
    assert metric(ta, tb, crop_border=2, y_channel=y_channel) == pytest.approx(ref, abs=1e-9)
    assert metric(ta, b, crop_border=2, y_channel=y_channel) == pytest.approx(ref, abs=1e-9)
    assert metric(a, tb, crop_border=2, y_channel=y_channel) == pytest.approx(ref, abs=1e-9)
    # float32 tensors from from_uint8 differ from k/255 by float32 rounding only
    assert metric(from_uint8(a), b, crop_border=2, y_channel=y_channel) == pytest.approx(ref, abs=1e-4)


def test_tensor_is_not_quantised():
    a = torch.full((3, 12, 12), 0.5)
    b = a + 0.1 / 255  # a sub-8-bit difference is measured, not rounded away
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 0.01), abs=1e-3)


@pytest.mark.parametrize("metric", [psnr, ssim])
@pytest.mark.parametrize(
    ("img1", "img2", "kwargs"),
    [
        (np.zeros((16, 16, 3), np.uint8), np.zeros((16, 17, 3), np.uint8), {}),  # shape mismatch
        (torch.zeros(3, 16, 16), torch.zeros(3, 17, 16), {}),
        (np.zeros((16, 16, 4), np.uint8), np.zeros((16, 16, 4), np.uint8), {}),  # 4 channels
        (np.zeros((16, 16), np.uint8), np.zeros((16, 16), np.uint8), {}),  # grayscale 2-D
        (torch.zeros(1, 16, 16), torch.zeros(1, 16, 16), {}),  # 1 channel
        (torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16), {}),  # batched
        (np.zeros((16, 16, 3)), np.zeros((16, 16, 3)), {}),  # float numpy
        (torch.zeros(3, 16, 16, dtype=torch.uint8), torch.zeros(3, 16, 16, dtype=torch.uint8), {}),
        ([[0]], [[0]], {}),
        (np.zeros((16, 16, 3), np.uint8), np.zeros((16, 16, 3), np.uint8), {"crop_border": -1}),
        (np.zeros((16, 16, 3), np.uint8), np.zeros((16, 16, 3), np.uint8), {"crop_border": 8}),  # nothing left
    ],
)
def test_errors(metric, img1, img2, kwargs):
    with pytest.raises(ValueError):
        metric(img1, img2, **kwargs)


def test_ssim_too_small_without_crop():
    a = np.zeros((10, 30, 3), np.uint8)
    with pytest.raises(ValueError):
        ssim(a, a)
    assert psnr(a, a) == float("inf")  # PSNR has no minimum size
