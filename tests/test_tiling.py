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


# -- measured overlaps (bundled models) ----------------------------------------------


def _sample_photo() -> torch.Tensor:
    from importlib import resources

    from sain.imaging import read_image

    return read_image(str(resources.files("sain") / "data" / "sample.png"))[None]  # 768x512, a real photo


def test_measure_overlap_finds_the_radius_of_a_model_that_uses_it():
    """A perturbed tiny SAIN (one E-block: radius 5 LR px down) needs the whole bound in
    float64 at a tolerance of 0; a loose tolerance accepts less."""
    m = _perturbed()
    hr = torch.rand(1, 3, 64, 64, dtype=torch.float64)
    assert tiling.measure_overlap(m, hr, "down", tol=0.0, core=8, crop=24) == 5
    assert tiling.measure_overlap(m, hr, "down", tol=1.0, core=8, crop=24) == 4
    with pytest.raises(ValueError):
        tiling.measure_overlap(m, hr, "sideways")


def test_default_overlap_is_the_models_measured_one_never_above_the_bound():
    m = sain.SAIN(2)
    assert tiling.default_overlap(m, "down") == 45 and tiling.default_overlap(m, "up") == 80
    m.tile_overlap = {"down": 24, "up": 24}
    assert tiling.default_overlap(m, "down") == 24 and tiling.default_overlap(m, "up") == 24
    m.tile_overlap = {"up": 500}
    assert tiling.default_overlap(m, "down") == 45 and tiling.default_overlap(m, "up") == 80


@pytest.mark.parametrize("name", [e.name for e in sain.list_models() if e.available and e.tile_overlap])
def test_bundled_models_tile_with_their_overlap_like_untiled(name):
    """The zoo's measured overlap (default of the tiled functions for a bundled model) on a
    real photo cut into 48-px tiles (seams everywhere): within 1e-5 of the untiled result
    (1/400 of an 8-bit level), and the 8-bit thumbnail and restored image equal to the
    untiled ones in at least 99.999 % of their values, never more than 1 level off."""
    m = sain.load_model(name, frozen=True)
    assert m.tile_overlap == dict(zip(("down", "up"), sain.zoo.ZOO[name].tile_overlap, strict=True))
    s = m.scale
    hr = _sample_photo()[:, :, : 96 * s, : 144 * s]
    with torch.no_grad():
        ref_lr = tiling.tiled_downscale(m, hr, tile=144 * s, overlap=0)  # one tile
        lr = tiling.tiled_downscale(m, hr, tile=48 * s)  # the measured overlap
        q = torch.round(ref_lr.clamp(0, 1) * 255) / 255
        ref_hr = tiling.tiled_upscale(m, q, tile=144, overlap=0, seed=3)
        out = tiling.tiled_upscale(m, q, tile=48, seed=3)
    for a, b in ((lr, ref_lr), (out, ref_hr)):
        assert float((a - b).abs().max()) <= 1e-5
        a8, b8 = (torch.round(t.clamp(0, 1) * 255) for t in (a, b))
        assert float((a8 != b8).float().mean()) <= 1e-5
        assert float((a8 - b8).abs().max()) <= 1


@pytest.mark.slow
@pytest.mark.parametrize("name", [e.name for e in sain.list_models() if e.available and e.tile_overlap])
def test_bundled_overlaps_keep_a_margin_over_the_measured_ones(name):
    """Remeasured at a tolerance of 1e-6 on the sample photo: the zoo's overlap is at least
    the measured one (the zoo stores 1.5x it); about 25 s per model."""
    m = sain.load_model(name, frozen=True)
    hr = _sample_photo()
    for d, stored in zip(("down", "up"), sain.zoo.ZOO[name].tile_overlap, strict=True):
        assert tiling.measure_overlap(m, hr, d, tol=1e-6) <= stored
