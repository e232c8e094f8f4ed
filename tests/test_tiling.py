"""Tiled processing (sain.tiling): receptive field, latent sampling, tiled == untiled."""

from __future__ import annotations

import pytest
import torch

import sain
from sain import tiling

torch.set_num_threads(1)


def _perturbed(e: int = 1, v: int = 1, dtype=torch.float64) -> sain.SAIN:
    """A tiny SAIN whose every subnet does something (fresh couplings are the identity)."""
    torch.manual_seed(0)
    m = sain.SAIN(2, e_blocks=e, v_blocks=v)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
        m.gmm.gmm_para.normal_()
    return m.to(dtype).eval()


def test_receptive_radius_of_paper_models():
    # 5 E-blocks: LR radius 4 * 10 + 5 = 45 LR px; inverse of 8 blocks: 8 * 10 = 80 LR px.
    m2 = sain.SAIN(2)
    assert tiling.receptive_radius(m2, "down") == 90
    assert tiling.receptive_radius(m2, "up") == 160
    m4 = sain.SAIN(4)
    assert tiling.receptive_radius(m4, "down") == 95 * 4
    assert tiling.receptive_radius(m4, "up") == 160 * 4
    assert tiling.receptive_radius(sain.IRN(2), "down") == 75 * 2  # 8 vanilla blocks, y1 of the last
    with pytest.raises(ValueError):
        tiling.receptive_radius(m2, "sideways")


def test_tiled_equals_untiled_float64():
    m = _perturbed()
    hr = torch.rand(1, 3, 56, 72, dtype=torch.float64)
    with torch.no_grad():
        ref = m.downscale(hr).float()
    out = tiling.tiled_downscale(m, hr, tile=16)  # exact overlap: 10 HR px for one E-block
    assert out.shape == ref.shape
    assert (out - ref).abs().max().item() == 0.0

    lr = torch.rand(1, 3, 60, 52, dtype=torch.float64)
    with torch.no_grad():
        ref = m.upscale(lr, torch.Generator().manual_seed(7)).float()
    out = tiling.tiled_upscale(m, lr, tile=8, seed=7)  # overlap 20 LR px: tiles smaller than the image
    assert out.shape == ref.shape
    assert (out - ref).abs().max().item() == 0.0


def test_overlap_below_the_radius_is_not_exact():
    """The computed radius is tight: one scale step less context changes the result."""
    m = _perturbed()
    hr = torch.rand(1, 3, 48, 48, dtype=torch.float64)
    with torch.no_grad():
        ref = m.downscale(hr).float()
    out = tiling.tiled_downscale(m, hr, tile=16, overlap=8)  # radius 10 -> 10 needed
    assert (out - ref).abs().max().item() > 1e-6


def test_tiled_float32_difference_is_rounding_only():
    m = _perturbed(dtype=torch.float32)
    lr = torch.rand(1, 3, 52, 44)
    with torch.no_grad():
        ref = m.upscale(lr, torch.Generator().manual_seed(1))
    out = tiling.tiled_upscale(m, lr, tile=16, seed=1)
    assert (out - ref).abs().max().item() < 1e-4  # measured about 1e-6 to 1e-5


@pytest.mark.parametrize("chunk", [16 * 7, 16 * 853, 1 << 20])  # 853: remainder of 5 < 16 values
def test_chunked_latent_is_bit_identical(monkeypatch, chunk):
    m = _perturbed(dtype=torch.float32)
    monkeypatch.setattr(tiling, "_CHUNK", chunk)
    lr = torch.rand(1, 3, 37, 41)
    ref = m.sample_latent(lr, torch.Generator().manual_seed(5))
    assert torch.equal(tiling.sample_latent(m, lr, seed=5), ref)


def test_bad_tiling_arguments():
    m = _perturbed(dtype=torch.float32)
    with pytest.raises(ValueError, match="multiple of the scale"):
        tiling.tiled_downscale(m, torch.rand(1, 3, 16, 16), tile=15)
    with pytest.raises(ValueError, match="z must have shape"):
        tiling.tiled_upscale(m, torch.rand(1, 3, 8, 8), z=torch.zeros(1, 9, 4, 4))
