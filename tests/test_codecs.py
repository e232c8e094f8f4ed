"""Tests of sain.codecs: 8-bit STE quantisation, real Pillow codecs, differentiable JPEG."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, features

from sain.codecs import (
    FORMATS,
    DiffJPEG,
    RealCodec,
    available_formats,
    codec_roundtrip,
    decode,
    diff_jpeg,
    encode,
    quality_tables,
    quantize,
    smooth_round,
)

KODAK = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "test" / "Kodak24"
PIL_NAMES = {"jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF", "png": "PNG"}


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a.double() - b.double()) ** 2).mean().item()
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)


def synthetic_image(h: int = 96, w: int = 128, seed: int = 0) -> torch.Tensor:
    """A deterministic natural-looking RGB image (1, 3, h, w) on the 8-bit grid.

    Smooth gradients, a few sinusoidal textures of several frequencies, hard-edged
    shapes (disc, rectangle, stripes) and mild noise.
    """
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(
        torch.linspace(0, 1, h, dtype=torch.float64),
        torch.linspace(0, 1, w, dtype=torch.float64),
        indexing="ij",
    )
    chans = []
    for c in range(3):
        phase = torch.rand(3, generator=g, dtype=torch.float64) * 2 * math.pi
        v = 0.25 + 0.3 * xx * (c + 1) / 3 + 0.2 * yy * (3 - c) / 3
        v = v + 0.08 * torch.sin(2 * math.pi * (3 * xx + 2 * yy) + phase[0])
        v = v + 0.05 * torch.sin(2 * math.pi * 11 * xx + phase[1]) * torch.cos(2 * math.pi * 7 * yy)
        v = v + 0.02 * torch.sin(2 * math.pi * (23 * xx - 17 * yy) + phase[2])
        chans.append(v)
    img = torch.stack(chans)
    disc = ((xx - 0.3) ** 2 + (yy - 0.4) ** 2) < 0.04
    img[:, disc] = torch.tensor([0.85, 0.3, 0.2], dtype=torch.float64).view(3, 1)
    rect = (xx > 0.6) & (xx < 0.9) & (yy > 0.55) & (yy < 0.85)
    img[:, rect] = torch.tensor([0.15, 0.25, 0.7], dtype=torch.float64).view(3, 1)
    stripes = (xx > 0.55) & (yy < 0.35) & ((xx * w).floor() % 6 < 3)
    img[:, stripes] = img[:, stripes] * 0.4 + 0.5
    img = img + 0.006 * torch.randn(img.shape, generator=g, dtype=torch.float64)
    img = (img.clamp(0, 1) * 255).round() / 255
    return img.float().unsqueeze(0)


def pillow_roundtrip(u8: np.ndarray, fmt: str, quality: int, **params) -> tuple[np.ndarray, int]:
    buf = io.BytesIO()
    if fmt != "png":
        params["quality"] = quality
    Image.fromarray(u8).save(buf, format=PIL_NAMES[fmt], **params)
    data = buf.getvalue()
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), len(data)


def to_u8(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def require(fmt: str) -> None:
    if fmt not in available_formats():
        pytest.skip(f"{fmt} is not supported by this Pillow build (PIL.features.check is false)")


# --------------------------------------------------------------------------- quantize


def test_quantize_values() -> None:
    x = torch.tensor([-0.3, 0.0, 0.1, 0.5, 0.7, 1.0, 1.7])
    q = quantize(x)
    expected = torch.round(x.clamp(0, 1) * 255) / 255
    assert torch.equal(q, expected)
    assert torch.allclose(q * 255, (q * 255).round(), atol=1e-4)
    assert q.min() >= 0 and q.max() <= 1


def test_quantize_ste_gradient_and_input_untouched() -> None:
    x = torch.linspace(-0.5, 1.5, 41, dtype=torch.float64, requires_grad=True)
    before = x.detach().clone()
    q = quantize(x)
    assert q.dtype == torch.float64
    (q * torch.arange(41.0, dtype=torch.float64)).sum().backward()
    assert torch.equal(x.grad, torch.arange(41.0, dtype=torch.float64))  # identity, also where clamped
    assert torch.equal(x.detach(), before)


def test_quantize_rejects_integers() -> None:
    with pytest.raises(TypeError):
        quantize(torch.zeros(3, dtype=torch.uint8))


# --------------------------------------------------------------------------- real codecs


def test_available_formats() -> None:
    avail = available_formats()
    assert set(avail) <= set(FORMATS)
    assert "jpeg" in avail and "png" in avail
    assert ("avif" in avail) == features.check("avif")


@pytest.mark.parametrize("fmt", FORMATS)
def test_roundtrip_matches_pillow(fmt: str) -> None:
    require(fmt)
    x = synthetic_image(40, 56)
    x = x + 0.002 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))  # off the grid
    out, sizes = codec_roundtrip(x, fmt, quality=50)
    ref, size = pillow_roundtrip(to_u8(x[0]), fmt, 50)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(out[0], torch.from_numpy(ref.copy()).permute(2, 0, 1).float() / 255)
    assert sizes == [size]
    # encode / decode agree with the same bytes
    data = encode(to_u8(x[0]), fmt, 50)
    assert len(data) == size
    assert np.array_equal(decode(data), ref)


@pytest.mark.parametrize("subsampling", ["4:4:4", "4:2:2", "4:2:0", 0])
def test_jpeg_subsampling_matches_pillow(subsampling) -> None:
    x = synthetic_image(32, 48)
    out, sizes = codec_roundtrip(x, "jpeg", 60, subsampling=subsampling)
    ref, size = pillow_roundtrip(to_u8(x[0]), "jpeg", 60, subsampling=subsampling)
    assert torch.equal((out[0] * 255).round().to(torch.uint8).permute(1, 2, 0), torch.from_numpy(ref.copy()))
    assert sizes == [size]


def test_jpeg_default_subsampling_is_420() -> None:
    x = synthetic_image(32, 48)
    default, s_default = codec_roundtrip(x, "jpeg", 60)
    s420, s_420 = codec_roundtrip(x, "jpeg", 60, subsampling="4:2:0")
    s444, _ = codec_roundtrip(x, "jpeg", 60, subsampling="4:4:4")
    assert torch.equal(default, s420) and s_default == s_420
    assert not torch.equal(default, s444)


def test_roundtrip_shape_dtype_device_and_no_grad() -> None:
    x = synthetic_image(24, 40)[0].double().requires_grad_(True)  # (3, H, W), float64
    out, sizes = codec_roundtrip(x, "jpeg", 80)
    assert out.shape == x.shape and out.dtype == torch.float64 and out.device == x.device
    assert not out.requires_grad
    assert len(sizes) == 1 and sizes[0] > 0
    assert torch.equal(out * 255, (out * 255).round())  # values are k / 255
    assert torch.equal(RealCodec("jpeg", 80)(x), out)


def test_batch_equals_per_image_and_workers() -> None:
    x = torch.cat([synthetic_image(32, 40, seed=s) for s in range(3)])
    fmt = "webp" if "webp" in available_formats() else "jpeg"
    out, sizes = codec_roundtrip(x, fmt, 40)
    for i in range(3):
        one, size = codec_roundtrip(x[i], fmt, 40)
        assert torch.equal(out[i], one) and sizes[i] == size[0]
    par, par_sizes = codec_roundtrip(x, fmt, 40, workers=3)
    assert torch.equal(par, out) and par_sizes == sizes
    assert torch.equal(RealCodec(fmt, 40, workers=2).roundtrip(x)[0], out)


def test_png_is_lossless() -> None:
    x = synthetic_image(20, 30)
    out, sizes = codec_roundtrip(x, "png", 1)
    assert torch.equal(out, x)
    assert sizes[0] == len(encode(to_u8(x[0]), "png"))


@pytest.mark.parametrize("quality", [0, 101, 75.0, True, "75"])
def test_bad_quality(quality) -> None:
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="quality"):
        codec_roundtrip(x, "jpeg", quality)
    with pytest.raises(ValueError, match="quality"):
        encode(np.zeros((8, 8, 3), np.uint8), "jpeg", quality)


def test_unknown_format_and_bad_inputs() -> None:
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="jpeg, webp, avif, png"):
        codec_roundtrip(x, "gif")
    with pytest.raises(ValueError, match="subsampling"):
        codec_roundtrip(x, "png", subsampling="4:4:4")
    with pytest.raises(ValueError, match="subsampling"):
        codec_roundtrip(x, "jpeg", subsampling="4:1:1")
    with pytest.raises(ValueError):
        codec_roundtrip(torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError):
        codec_roundtrip(x, workers=0)
    with pytest.raises(TypeError):
        codec_roundtrip(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError):
        encode(np.zeros((8, 8), np.uint8), "jpeg")


def test_avif_roundtrip() -> None:
    require("avif")
    x = synthetic_image(32, 32)
    out, sizes = codec_roundtrip(x, "avif", 60)
    assert out.shape == x.shape and sizes[0] > 0
    assert psnr(out, x) > 25


# --------------------------------------------------------------------------- differentiable JPEG


def test_quality_tables_match_pillow() -> None:
    for q in (1, 10, 25, 49, 50, 51, 75, 90, 95, 100):
        buf = io.BytesIO()
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, "JPEG", quality=q)
        qt = Image.open(io.BytesIO(buf.getvalue())).quantization  # natural (row-major) order
        luma, chroma = quality_tables(q)
        assert luma.shape == (1, 8, 8)
        assert luma.flatten().int().tolist() == list(qt[0]), q
        assert chroma.flatten().int().tolist() == list(qt[1]), q


def test_smooth_round() -> None:
    k = torch.arange(-5.0, 6.0, dtype=torch.float64)
    assert torch.allclose(smooth_round(k), k, atol=1e-9)  # exact at integers
    assert torch.allclose(smooth_round(k + 0.5), k + 0.5, atol=1e-9)  # and half-integers
    off = torch.tensor([0.2, 1.3, -2.25], dtype=torch.float64)
    assert (smooth_round(off) - off.round()).abs().max() < 0.05


def _surrogate_vs_real(x: torch.Tensor, qf: int) -> tuple[float, float, float]:
    real, _ = codec_roundtrip(x, "jpeg", qf)
    sur = diff_jpeg(x, qf)
    return psnr(sur, real), psnr(sur, x), psnr(real, x)


# Measured on synthetic_image() (96x128): surrogate-vs-real 43.2 / 44.0 / 47.1 dB at QF 50 / 75 / 95
# (real-vs-input 28.3 / 29.9 / 32.2 dB); the bounds leave about 2 dB of slack.
@pytest.mark.parametrize(("qf", "bound"), [(50, 41.0), (75, 42.0), (95, 45.0)])
def test_diffjpeg_close_to_real_jpeg(qf: int, bound: float) -> None:
    x = synthetic_image()
    p_real, p_input, p_codec = _surrogate_vs_real(x, qf)
    print(
        f"QF{qf}: surrogate-vs-real {p_real:.2f} dB, surrogate-vs-input {p_input:.2f} dB, "
        f"real-vs-input {p_codec:.2f} dB"
    )
    assert p_real > bound
    assert p_real > p_codec  # closer to the real JPEG than the real JPEG is to the input
    assert abs(p_input - p_codec) < 1.0  # about as lossy as the real codec


def test_diffjpeg_actually_compresses() -> None:
    x = synthetic_image()
    p_real, p_input, _ = _surrogate_vs_real(x, 20)  # measured 39.5 and 26.1 dB
    assert p_input < 36.0
    assert p_real > p_input + 6.0


@pytest.mark.datasets
def test_diffjpeg_close_to_real_jpeg_kodak() -> None:
    if not KODAK.is_dir():
        pytest.skip(f"Kodak24 not found at {KODAK}")
    img = np.array(Image.open(KODAK / "kodim23.png").convert("RGB"))[64:320, 128:448]
    x = torch.from_numpy(img).permute(2, 0, 1).float().unsqueeze(0) / 255
    # Measured: 42.5 / 43.6 / 45.3 / 47.2 dB at QF 30 / 50 / 75 / 95.
    for qf, bound in ((30, 40.5), (50, 41.5), (75, 43.0), (95, 45.0)):
        p_real, p_input, p_codec = _surrogate_vs_real(x, qf)
        print(f"kodim23 QF{qf}: surrogate-vs-real {p_real:.2f} dB, real-vs-input {p_codec:.2f} dB")
        assert p_real > bound


def test_diffjpeg_gradients_finite_nonzero() -> None:
    x = synthetic_image(32, 48).requires_grad_(True)
    before = x.detach().clone()
    y = diff_jpeg(x, 75)
    assert torch.equal(x.detach(), before)
    (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0
    assert (x.grad != 0).float().mean() > 0.5


def test_diffjpeg_gradcheck_float64() -> None:
    g = torch.Generator().manual_seed(0)
    x = (0.3 + 0.4 * torch.rand(1, 3, 16, 16, generator=g, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: diff_jpeg(t, 60), (x,), eps=1e-6, atol=1e-5, rtol=1e-3)


def test_diffjpeg_per_sample_quality() -> None:
    x = torch.cat([synthetic_image(24, 32, seed=s) for s in range(3)])
    q = torch.tensor([20.0, 55.0, 90.0])
    out = diff_jpeg(x, q)
    for i in range(3):
        assert torch.allclose(out[i : i + 1], diff_jpeg(x[i : i + 1], float(q[i])), atol=1e-6)
    assert torch.allclose(diff_jpeg(x, torch.tensor(55.0)), diff_jpeg(x, 55))
    assert torch.allclose(DiffJPEG(55)(x), diff_jpeg(x, 55))
    assert torch.allclose(DiffJPEG(10)(x, q), out)


@pytest.mark.parametrize("size", [(37, 53), (1, 1), (8, 17), (16, 16)])
def test_diffjpeg_any_size_and_dtype(size: tuple[int, int]) -> None:
    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = diff_jpeg(x, 75)
    assert y.shape == x.shape and y.dtype == torch.float64
    assert y.min() >= 0 and y.max() <= 1
    y32 = diff_jpeg(x.float(), 75)
    assert y32.dtype == torch.float32
    assert torch.allclose(y32.double(), y, atol=1e-3)


def test_diffjpeg_odd_size_close_to_real() -> None:
    x = synthetic_image(37, 53)
    p_real, _, _ = _surrogate_vs_real(x, 75)
    assert p_real > 40.5  # measured 42.7 dB


def test_diffjpeg_module_has_no_state() -> None:
    m = DiffJPEG(75)
    assert len(list(m.parameters())) == 0
    assert m.state_dict() == {}
    assert "quality=75" in repr(m)


def test_diffjpeg_bad_inputs() -> None:
    x = torch.rand(1, 3, 8, 8)
    for q in (0, 101, float("nan")):
        with pytest.raises(ValueError):
            diff_jpeg(x, q)
    with pytest.raises(ValueError):
        diff_jpeg(x, torch.tensor([50.0, 60.0]))
    with pytest.raises(ValueError):
        diff_jpeg(x, torch.tensor([0.5]))
    with pytest.raises(TypeError):
        diff_jpeg(x, "75")
    with pytest.raises(ValueError):
        diff_jpeg(torch.rand(3, 8, 8), 75)
    with pytest.raises(TypeError):
        diff_jpeg(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), 75)
    with pytest.raises(ValueError):
        diff_jpeg(x, 75, chroma_upsampling="bicubic")
    with pytest.raises(ValueError):
        DiffJPEG(0)
