"""Tests for sain.imaging.resize: MATLAB-compatible bicubic imresize."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sain.imaging import bicubic_down, bicubic_up, imresize

# ---------------------------------------------------------------------------
# Independent reference: a literal, loop-by-loop transcription of MATLAB's
# imresize.m (R2013+ algorithm) for double images, bicubic, 1-based indices.
# ---------------------------------------------------------------------------


def _ref_cubic(x: float) -> float:
    ax = abs(x)
    if ax <= 1:
        return 1.5 * ax**3 - 2.5 * ax**2 + 1
    if ax <= 2:
        return -0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2
    return 0.0


def _ref_mirror(j: int, n: int) -> int:
    """Half-sample symmetric extension of 1-based index j into 1..n (..., 2, 1, 1, 2, ..., n, n, n-1, ...)."""
    period = 2 * n
    j = (j - 1) % period  # 0 .. 2n-1
    return j + 1 if j < n else period - j


def _ref_resize_1d(v: np.ndarray, out_len: int, scale: float, antialias: bool = True) -> np.ndarray:
    n = len(v)
    width = 4.0 / scale if (scale < 1 and antialias) else 4.0
    out = np.zeros(out_len)
    for i in range(1, out_len + 1):
        u = i / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        taps = math.ceil(width) + 2
        ws, js = [], []
        for p in range(taps):
            j = left + p
            if scale < 1 and antialias:
                w = scale * _ref_cubic(scale * (u - j))
            else:
                w = _ref_cubic(u - j)
            ws.append(w)
            js.append(_ref_mirror(j, n))
        total = sum(ws)
        out[i - 1] = sum(w / total * v[j - 1] for w, j in zip(ws, js))
    return out


def ref_imresize(img: np.ndarray, scale: float | None = None, size: tuple[int, int] | None = None) -> np.ndarray:
    """MATLAB imresize(img, scale) / imresize(img, [h w]) of a 2-D float64 array."""
    h, w = img.shape
    if size is None:
        out_h, out_w = math.ceil(h * scale - 1e-9), math.ceil(w * scale - 1e-9)
        sh = sw = scale
    else:
        out_h, out_w = size
        sh, sw = out_h / h, out_w / w
    img = np.asarray(img, dtype=np.float64)
    # MATLAB: resize along the dimension with the smallest scale first.
    if sh <= sw:
        tmp = np.stack([_ref_resize_1d(img[:, c], out_h, sh) for c in range(w)], axis=1)
        return np.stack([_ref_resize_1d(tmp[r, :], out_w, sw) for r in range(out_h)], axis=0)
    tmp = np.stack([_ref_resize_1d(img[r, :], out_w, sw) for r in range(h)], axis=0)
    return np.stack([_ref_resize_1d(tmp[:, c], out_h, sh) for c in range(out_w)], axis=1)


def _resize2d(a: np.ndarray, **kw) -> np.ndarray:
    return imresize(torch.from_numpy(a)[None, None], **kw)[0, 0].numpy()


# --------------------------------------------------------------------- shapes


@pytest.mark.parametrize(
    ("hw", "scale", "expected"),
    [
        ((8, 8), 0.5, (4, 4)),
        ((5, 7), 0.5, (3, 4)),
        ((6, 5), 2, (12, 10)),
        ((9, 9), 1 / 3, (3, 3)),
        ((8, 12), 0.25, (2, 3)),
        ((9, 7), 0.75, (7, 6)),
        ((3, 4), 4, (12, 16)),
    ],
)
def test_output_size_is_ceil(hw, scale, expected):
    out = imresize(torch.rand(2, 3, *hw), scale)
    assert out.shape == (2, 3, *expected)


def test_size_argument_and_3d_input():
    x = torch.rand(3, 7, 5)
    out = imresize(x, size=(4, 9))
    assert out.shape == (3, 4, 9)


def test_bicubic_down_up_shapes():
    x = torch.rand(1, 3, 16, 12)
    assert bicubic_down(x, 4).shape == (1, 3, 4, 3)
    assert bicubic_up(x, 2).shape == (1, 3, 32, 24)
    torch.testing.assert_close(bicubic_down(x, 2), imresize(x, 0.5), rtol=0, atol=0)


# ----------------------------------------------------------------- exceptions


@pytest.mark.parametrize(
    ("x", "kwargs"),
    [
        (torch.rand(4, 4), {"scale": 0.5}),
        (torch.rand(1, 1, 1, 4, 4), {"scale": 0.5}),
        (torch.ones(1, 3, 4, 4, dtype=torch.uint8), {"scale": 0.5}),
        (torch.rand(1, 3, 4, 4), {"scale": 0}),
        (torch.rand(1, 3, 4, 4), {"scale": -2}),
        (torch.rand(1, 3, 4, 4), {}),
        (torch.rand(1, 3, 4, 4), {"scale": 2, "size": (8, 8)}),
        (torch.rand(1, 3, 4, 4), {"size": (0, 8)}),
        (np.zeros((3, 4, 4)), {"scale": 2}),
    ],
)
def test_bad_input_raises(x, kwargs):
    with pytest.raises(ValueError):
        imresize(x, **kwargs)


# ----------------------------------------------------------- reference values


@pytest.mark.parametrize(
    ("hw", "kwargs"),
    [
        ((8, 8), {"scale": 0.5}),
        ((7, 9), {"scale": 0.5}),
        ((12, 8), {"scale": 0.25}),
        ((5, 6), {"scale": 2}),
        ((5, 3), {"scale": 4}),
        ((9, 7), {"scale": 0.75}),
        ((6, 7), {"scale": 1.5}),
        ((7, 5), {"size": (4, 9)}),  # down in H, up in W: W is resized first
    ],
)
def test_matches_independent_matlab_transcription(hw, kwargs):
    img = np.random.default_rng(sum(hw)).random(hw)
    np.testing.assert_allclose(_resize2d(img, **kwargs), ref_imresize(img, **kwargs), rtol=0, atol=1e-12)


def test_known_values_downscale_by_half():
    # MATLAB imresize([1 2 4 8], 0.5), derived by hand from imresize.m:
    # antialiased kernel h(x) = 0.5*cubic(0.5x), width 8, P = 10 taps; output pixel
    # 1 sits at u = 1/0.5 + 0.5*(1 - 2) = 1.5, taps j = floor(1.5 - 4) + (0..9) = -3..6.
    # cubic at |u-j|/2 = 2.25, 1.75, 1.25, 0.75, 0.25 is 0, -0.0234375, -0.0703125,
    # 0.2265625, 0.8671875 (sum over the 10 taps = 2, so the normalised weights are half of that).
    # Symmetric padding maps j = -3..6 to 4 3 2 1 | 1 2 3 4 | 4 3, so merged weights on
    # x1..x4 are 0.546875, 0.3984375, 0.1015625, -0.046875 (and reversed for pixel 2):
    #   y1 = 0.546875*1 + 0.3984375*2 + 0.1015625*4 - 0.046875*8 = 1.375
    #   y2 = -0.046875*1 + 0.1015625*2 + 0.3984375*4 + 0.546875*8 = 6.125
    # The single row mirrors onto itself, so the height (1 -> ceil(0.5) = 1) is unchanged.
    x = np.array([[1.0, 2.0, 4.0, 8.0]])
    np.testing.assert_allclose(_resize2d(x, scale=0.5), [[1.375, 6.125]], rtol=0, atol=1e-14)
    np.testing.assert_allclose(ref_imresize(x, scale=0.5), [[1.375, 6.125]], rtol=0, atol=1e-14)
    # The same weights in 2-D: imresize(magic(4), 0.5) is 8.5 everywhere, since each
    # output is w' * M * v with w, v one of the two (mutually reversed) weight vectors.
    magic4 = np.array([[16, 2, 3, 13], [5, 11, 10, 8], [9, 7, 6, 12], [4, 14, 15, 1]], dtype=np.float64)
    np.testing.assert_allclose(_resize2d(magic4, scale=0.5), np.full((2, 2), 8.5), rtol=0, atol=1e-12)


def test_known_values_upscale_by_two():
    # MATLAB imresize([1 2 4 8], 2) (no antialiasing when enlarging, width 4, P = 6):
    # output pixel 1 at u = 1/2 + 0.5*(1 - 1/2) = 0.75, taps j = -2..3 with distances
    # 2.75, 1.75, 0.75, -0.25, -1.25, -2.25 -> cubic 0, -0.0234375, 0.2265625, 0.8671875,
    # -0.0703125, 0 (sum 1); padding maps j = -2..3 to 3 2 1 1 2 3:
    #   y1 = (0.2265625 + 0.8671875)*x1 + (-0.0234375 - 0.0703125)*x2 = 1.09375 - 0.1875 = 0.90625
    # pixel 2 at u = 1.25, taps j = -1..4, distances 2.25, 1.25, 0.25, -0.75, -1.75, -2.75,
    # mapped to 2 1 1 2 3 4:
    #   y2 = (-0.0703125 + 0.8671875)*x1 + 0.2265625*x2 - 0.0234375*x3 = 0.796875 + 0.453125 - 0.09375 = 1.15625
    # Height 1 -> 2: both rows equal.
    x = np.array([[1.0, 2.0, 4.0, 8.0]])
    out = _resize2d(x, scale=2)
    assert out.shape == (2, 8)
    np.testing.assert_allclose(out[:, :2], [[0.90625, 1.15625]] * 2, rtol=0, atol=1e-14)
    np.testing.assert_allclose(ref_imresize(x, scale=2)[:, :2], [[0.90625, 1.15625]] * 2, rtol=0, atol=1e-14)


def test_third_party_published_values():
    x = np.arange(16, dtype=np.float64).reshape(4, 4)
    # GNU Octave image package, imresize(reshape(0:15, 4, 4)', 0.5, 'bicubic', 'AntiAliasing', false)
    # as printed in a public script: [2.1875 4.3125; 10.6875 12.8125].
    out = imresize(torch.from_numpy(x)[None, None], 0.5, antialias=False)[0, 0].numpy()
    np.testing.assert_allclose(out, [[2.1875, 4.3125], [10.6875, 12.8125]], rtol=0, atol=1e-12)
    # bicubic-pytorch (S. Son, "same as MATLAB imresize"), docstring example
    # imresize(arange(16).view(4, 4), sides=(3, 3)), 4 decimals. Its entry (1, 0) reads 6.1505,
    # but x + rot180(x) = 15 forces out(1,0) + out(1,2) = 15, i.e. 15 - 8.8499 = 6.1501.
    expected = [[0.7506, 2.1004, 3.4503], [6.1501, 7.5000, 8.8499], [11.5497, 12.8996, 14.2494]]
    np.testing.assert_allclose(_resize2d(x, size=(3, 3)), expected, rtol=0, atol=6e-5)


@pytest.mark.parametrize("scale", [0.25, 0.5, 0.75, 2, 3, 4])
def test_constant_image_stays_constant(scale):
    x = torch.full((1, 2, 13, 11), 0.3, dtype=torch.float64)
    torch.testing.assert_close(imresize(x, scale), torch.full_like(imresize(x, scale), 0.3), rtol=0, atol=1e-13)


@pytest.mark.parametrize("scale", [0.5, 2, 4])
def test_linear_ramp_is_reproduced_away_from_borders(scale):
    # Cubic convolution (a = -0.5) with normalised weights reproduces linear functions, so
    # wherever the kernel does not reach the mirrored border, output i equals the sample
    # position u_i = i/scale + 0.5*(1 - 1/scale) of a ramp whose value is its 1-based index.
    n = 32
    x = torch.arange(1, n + 1, dtype=torch.float64).expand(1, 1, 3, n)
    out = imresize(x, size=(3, math.ceil(n * scale)))[0, 0, 1]
    i = torch.arange(1, out.numel() + 1, dtype=torch.float64)
    u = i / scale + 0.5 * (1 - 1 / scale)
    half = 2 / scale if scale < 1 else 2  # kernel half-width in input pixels
    inside = (u - half >= 1) & (u + half <= n)
    assert inside.sum() > out.numel() // 2
    torch.testing.assert_close(out[inside], u[inside], rtol=0, atol=1e-12)
    # ...and is monotone everywhere.
    assert torch.all(out[1:] > out[:-1])


def test_no_clamping():
    x = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
    x[..., 4:] = 1.0
    out = imresize(x, 2)
    assert out.min() < 0 and out.max() > 1  # bicubic overshoot is kept


# ------------------------------------------------------- batching, dtype, device


def test_batched_equals_per_sample():
    x = torch.rand(3, 2, 9, 10)
    batched = imresize(x, 0.5)
    single = torch.stack([imresize(xi, 0.5) for xi in x])
    torch.testing.assert_close(batched, single, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_dtype_preserved(dtype):
    x = torch.rand(1, 3, 8, 8).to(dtype)
    out = imresize(x, 0.5)
    assert out.dtype == dtype
    ref = imresize(x.double(), 0.5)
    tol = {torch.float16: 1e-2, torch.bfloat16: 5e-2, torch.float32: 1e-6, torch.float64: 0}[dtype]
    torch.testing.assert_close(out.double(), ref, rtol=0, atol=tol)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_device_preserved_cuda():
    x = torch.rand(1, 3, 8, 8, device="cuda")
    out = imresize(x, 0.5)
    assert out.device == x.device
    torch.testing.assert_close(out.cpu(), imresize(x.cpu(), 0.5), rtol=1e-5, atol=1e-6)


def test_cache_built_under_inference_mode_still_supports_autograd():
    with torch.inference_mode():
        imresize(torch.rand(1, 1, 23, 19), 0.5)
    x = torch.rand(1, 1, 23, 19, requires_grad=True)
    imresize(x, 0.5).sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape


# ------------------------------------------------------------------- gradients


@pytest.mark.parametrize("kwargs", [{"scale": 0.5}, {"scale": 2}, {"size": (3, 7)}])
def test_gradcheck(kwargs):
    x = torch.rand(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: imresize(t, **kwargs), (x,))
