"""The methods of sain.pipeline: a network, bicubic and jpeg-hr behind one interface."""

from __future__ import annotations

import pytest
import torch

import sain
from sain import zoo
from sain.codecs import codec_roundtrip
from sain.imaging import bicubic_down, bicubic_up
from sain.pipeline import BASELINE_METHODS, BicubicMethod, HRCodecMethod, Method, ModelMethod, get_method, roundtrip


@pytest.fixture(scope="module")
def hr() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.round(torch.rand(1, 3, 24, 32) * 255) / 255


def _u8(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x.clamp(0, 1) * 255) / 255


def test_names_and_kinds() -> None:
    assert set(BASELINE_METHODS) == set(zoo.BASELINES)
    m = get_method(sain.SAIN(2, e_blocks=1, v_blocks=0))
    b, h = get_method("bicubic", scale=4), get_method("jpeg-hr")
    assert (m.kind, b.kind, h.kind) == ("model", "bicubic", "jpeg-hr")
    assert (m.name, b.name, h.name) == ("sain-x2", "bicubic", "jpeg-hr")
    assert (m.scale, b.scale, h.scale) == (2, 4, 1)
    assert all(isinstance(x, Method) for x in (m, b, h))
    assert get_method(b) is b
    with pytest.raises(ValueError, match="explicit scale"):
        get_method("bicubic")
    with pytest.raises(sain.CheckpointError, match="unknown model"):
        get_method("no-such-model")


def test_bicubic_method_is_matlab_bicubic(hr) -> None:
    b = BicubicMethod(2)
    lr = b.downscale(hr)
    assert torch.equal(lr, _u8(bicubic_down(hr, 2)))
    assert torch.equal(b.upscale(lr), _u8(bicubic_up(lr, 2)))
    rt, old = roundtrip(b, hr, "jpeg", 50), roundtrip(None, hr, "jpeg", 50, scale=2)
    assert torch.equal(rt.restored, old.restored) and rt.sizes == old.sizes


def test_hr_codec_method_compresses_the_hr(hr) -> None:
    rt = roundtrip(HRCodecMethod(), hr, "jpeg", 20)
    received, sizes = codec_roundtrip(hr, "jpeg", 20)
    assert torch.equal(rt.restored, received) and rt.sizes == sizes


def test_model_method_tiles_give_the_untiled_result(hr) -> None:
    torch.manual_seed(1)
    model = sain.SAIN(2, e_blocks=1, v_blocks=1).eval()
    plain, tiled = ModelMethod(model), ModelMethod(model, tile=16)
    big = torch.rand(1, 3, 64, 96)
    lr = plain.downscale(big)
    assert (tiled.downscale(big) - lr).abs().max() <= 1 / 255 + 1e-6
    assert (tiled.upscale(lr, seed=3) - plain.upscale(lr, seed=3)).abs().max() <= 1 / 255 + 1e-6
    assert torch.equal(
        roundtrip(model, hr, "webp", 60, seed=2).restored, roundtrip(plain, hr, "webp", 60, seed=2).restored
    )
