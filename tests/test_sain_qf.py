"""SAIN-QF (issue 13): exactly invertible at every quality, a thumbnail that ignores the
quality, V-blocks that depend on it once trained, a plain SAIN reproduced exactly at init
(identity FiLM), the per-sample-quality objective alive and decreasing, weight files, exact
tiling, and ``sain train`` end to end. Tiny networks (one or two blocks, 32 px)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

import sain
from _tiny_train import noise_images, train_two_steps
from sain import tiling
from sain.codecs import codec_roundtrip
from sain.imaging.resize import bicubic_down
from sain.models import DenseBlock, build_model, get_arch
from sain.models.sain_qf import SAINQF, FiLMDenseBlock
from sain.train import Objective
from sain.train.losses.sain_qf import draw_qualities, roundtrip_per_quality
from sain.train.objective import get_objective

TERMS = ["fit1", "fit2", "rel", "reg", "rec"]


def _perturb(model: torch.nn.Module, seed: int, std: float, film: bool = True) -> None:
    """Perturb every weight (so no coupling is the identity), the FiLM projections too if asked."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if film or (".film." not in name):
                p.add_(torch.randn(p.shape, generator=g, dtype=torch.float32).to(p.dtype) * std)


def _tiny(seed: int = 0, std: float = 0.05, film: bool = True, **kw) -> SAINQF:
    torch.manual_seed(seed)
    model = SAINQF(2, e_blocks=kw.pop("e_blocks", 1), v_blocks=kw.pop("v_blocks", 2), cond_dim=8, embed_hidden=16, **kw)
    _perturb(model, seed, std, film)
    return model


def _batch(seed: int = 0, n: int = 2, size: int = 32) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    hr = torch.nn.functional.interpolate(
        torch.rand(n, 3, size // 4, size // 4, generator=g), scale_factor=4, mode="bilinear", align_corners=False
    )
    hr = (hr + 0.05 * torch.rand(n, 3, size, size, generator=g)).clamp(0, 1)
    return {"hr": hr, "lr_ref": bicubic_down(hr, 2).clamp(0, 1)}


def test_registered_with_its_objective_and_config():
    assert get_arch("sain-qf") is SAINQF
    model = build_model("sain-qf", scale=2, e_blocks=1, v_blocks=1, cond_dim=16)
    cfg = model.config()
    assert cfg == {
        "scale": 2,
        "e_blocks": 1,
        "v_blocks": 1,
        "gmm_components": 5,
        "cond_dim": 16,
        "embed_hidden": 64,
        "default_quality": 75,
        "train_quality_range": [20, 95],
    }
    assert SAINQF.from_config(cfg).config() == cfg
    assert model.train_quality_range == (20, 95) and model.default_quality == 75
    spec = get_objective(SAINQF.objective)
    assert spec.name == "sain-qf" and spec.codec_worker and not spec.codec_targets
    # SAIN x2's 2,015,437 parameters + 9 FiLM projections (32 -> 256) + the embedding (1 -> 64 -> 32)
    n = sum(p.numel() for p in SAINQF(2).parameters())
    assert n == 2_015_437 + 9 * (32 * 256 + 256) + (64 + 64) + (64 * 32 + 32)
    assert SAINQF.infer_config(model.state_dict())["cond_dim"] == 16
    assert SAINQF.infer_config(sain.SAIN(2, e_blocks=1, v_blocks=1).state_dict()) is None
    for bad in (
        {"default_quality": 0},
        {"default_quality": 75.5},
        {"train_quality_range": [90, 20]},
        {"train_quality_range": [0, 95]},
    ):
        with pytest.raises(ValueError, match="quality"):
            SAINQF(2, e_blocks=1, v_blocks=1, **bad)


@pytest.mark.parametrize("quality", [10, 50, 95, "per-sample"])
def test_exactly_invertible_in_float64_at_each_quality(quality):
    model = _tiny(1, std=0.1).double().eval()
    x = torch.rand(3, 3, 16, 24, dtype=torch.float64)
    q = torch.tensor([20, 60, 95]) if quality == "per-sample" else quality
    y, lr, ld = model(x, return_logdet=True, quality=q)
    assert y.shape == (3, 12, 8, 12) and lr.shape == (3, 3, 8, 12)
    x_back, _, ld_back = model.inverse(y, return_logdet=True, quality=q)
    assert torch.allclose(x_back, x, atol=1e-12)
    assert torch.allclose(ld, -ld_back, atol=1e-9)
    # ... and only for that quality
    if quality != "per-sample":
        other = model.inverse(y, quality=100 - quality + 1)[0]
        assert not torch.allclose(other, x, atol=1e-6)


def test_the_log_determinant_is_the_jacobian_s():
    model = SAINQF(2, e_blocks=1, v_blocks=1, cond_dim=4, embed_hidden=4).double().eval()
    _perturb(model, 2, 0.1)
    x = torch.rand(1, 3, 4, 4, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda t: model(t.view(1, 3, 4, 4), quality=40)[0].flatten(), x.flatten())
    ld = model(x, return_logdet=True, quality=40)[2]
    assert torch.allclose(ld, torch.linalg.slogdet(jac)[1].view(1), atol=1e-9)


def test_the_thumbnail_does_not_depend_on_the_quality():
    model = _tiny(2, std=0.1).eval()
    x = torch.rand(2, 3, 24, 32)
    with torch.no_grad():
        y30, lr30 = model(x, quality=30)
        y90, lr90 = model(x, quality=90)
        assert torch.equal(lr30, lr90)
        assert torch.equal(model.downscale(x), lr30)
        assert not torch.allclose(y30, y90, atol=1e-4)  # the V-blocks do
    with pytest.raises(TypeError):
        model.downscale(x, quality=30)


def test_the_v_blocks_depend_on_the_quality_only_once_film_is_trained():
    model = _tiny(3, std=0.1, film=False).eval()  # FiLM projections still zero: identity modulation
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x, quality=20)[0], model(x, quality=95)[0])
        model.comp_operations[0].G.film.weight.normal_(0, 0.1)
        assert not torch.allclose(model(x, quality=20)[0], model(x, quality=95)[0], atol=1e-5)


def test_film_dense_block_is_the_dense_block_at_init():
    torch.manual_seed(0)
    film = FiLMDenseBlock(9, 3, cond_dim=5).double()
    plain = DenseBlock(9, 3).double()
    plain.load_state_dict({k: v for k, v in film.state_dict().items() if not k.startswith("film.")})
    _perturb(plain, 4, 0.1)
    film.load_state_dict({**plain.state_dict(), **{k: v for k, v in film.state_dict().items() if "film" in k}})
    x, cond = torch.randn(2, 9, 6, 6, dtype=torch.float64), torch.randn(2, 5, dtype=torch.float64)
    assert torch.equal(film(x, cond), plain.forward_concat(x))
    assert film.receptive_radius == plain.receptive_radius == 5
    with pytest.raises(ValueError, match="needs cond"):
        film(x)


def test_from_sain_reproduces_the_plain_sain_exactly():
    torch.manual_seed(5)
    plain = sain.SAIN(2, e_blocks=2, v_blocks=2)
    _perturb(plain, 5, 0.05)
    plain.eval()
    model = SAINQF.from_sain(plain, cond_dim=8)
    assert not model.training and model.cond_dim == 8
    shared = plain.state_dict()
    mine = model.state_dict()
    assert all(torch.equal(mine[k], v) for k, v in shared.items())
    assert {k for k in mine if k not in shared} == {
        k for k in mine if k.startswith("quality_embedding.") or ".film." in k
    }
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        y, lr = plain(x)
        for q in (20, 75, torch.tensor([30, 90])):
            y_q, lr_q = model(x, quality=q)
            assert torch.equal(lr_q, lr)
            assert torch.allclose(y_q, y, atol=1e-5)
            g = torch.Generator
            assert torch.allclose(
                model.upscale(lr, g().manual_seed(0), quality=q),
                plain.upscale(lr, g().manual_seed(0)),
                # float rounding of different convolution forms, amplified by the perturbed inverse
                # (up to 2.3e-5 on an AVX2-only CPU, where oneDNN's kernels sum in another order)
                atol=1e-4,
            )
        # bit-identical against the plain SAIN's V-blocks in their concatenating form
        for op in plain.comp_operations:
            for net in (op.F, op.G, op.H):
                net.fused = False
        assert torch.equal(model(x, quality=40)[0], plain(x)[0])
    with pytest.raises(TypeError, match="plain SAIN"):
        SAINQF.from_sain(model)


def test_from_the_bundled_sain_x2_jpeg_restores_what_it_restores():
    from sain.pipeline import roundtrip
    from sain.zoo import load_model

    try:
        plain = load_model("sain-x2-jpeg")
    except (ValueError, FileNotFoundError) as e:
        pytest.skip(f"bundled sain-x2-jpeg not available: {e}")
    model = SAINQF.from_sain(plain)
    g = torch.Generator().manual_seed(0)
    hr = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 8, generator=g), scale_factor=4, mode="bicubic")
    hr = hr.clamp(0, 1)
    for q in (30, 90):
        model.default_quality = q
        a, b = roundtrip(plain, hr, "jpeg", q), roundtrip(model, hr, "jpeg", q)
        assert torch.equal(a.lr, b.lr) and torch.equal(a.restored, b.restored)


def test_upscale_with_a_quality_and_with_the_default():
    model = _tiny(6).double().eval()
    lr = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    g = torch.Generator
    with torch.no_grad():
        default = model.upscale(lr, g().manual_seed(0))
        assert torch.equal(default, model.upscale(lr, g().manual_seed(0), quality=75))
        q90 = model.upscale(lr, g().manual_seed(0), quality=90)
        assert not torch.allclose(q90, default, atol=1e-5)
        model.default_quality = 90  # what code unaware of qualities gets
        assert torch.equal(model.upscale(lr, g().manual_seed(0)), q90)
        # per-sample qualities equal the single-quality calls
        both = model.upscale(lr, g().manual_seed(0), quality=torch.tensor([30, 90]))
        z = model.sample_latent(lr, g().manual_seed(0))
        for i, q in enumerate((30, 90)):
            one = model.inverse(torch.cat((lr[i : i + 1], z[i : i + 1]), 1), quality=q)[0]
            assert torch.allclose(both[i : i + 1], one, atol=1e-10)
        for bad in (0, 101, 50.5, True, torch.tensor([30, 40, 50]), torch.tensor([0.0, 50.0])):
            with pytest.raises(ValueError, match="quality"):
                model.upscale(lr, quality=bad)


def test_every_term_is_alive_and_the_loss_decreases_on_a_fixed_batch():
    model = _tiny(7).train()
    obj = Objective(model, "jpeg", 75, lambda_fit=4.0, lambda_rec=1.0, amp="none")
    batch = {**_batch(0), "quality": torch.tensor([25, 90])}
    terms = obj(batch)
    assert list(terms) == [*TERMS, "loss"]
    for k, v in terms.items():
        assert v.dtype == torch.float32 and v.dim() == 0 and torch.isfinite(v) and v.item() > 0, k
    fit = terms["fit1"] + terms["fit2"] + terms["rel"] + terms["reg"]
    assert torch.allclose(terms["loss"], terms["rec"] + 4 * fit / 4)
    terms["loss"].backward()
    assert all(
        p.grad is not None and torch.isfinite(p.grad).all()
        for n, p in model.named_parameters()
        if "quality_embedding" not in n
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    torch.manual_seed(0)
    losses = []
    for _ in range(6):
        out = obj(batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    with torch.no_grad():
        final = obj(batch)["loss"].item()
    assert all(np.isfinite(losses)) and final < 0.8 * losses[0], (losses, final)
    # after a step the FiLM projections are trained, so the embedding gets gradients too
    model.zero_grad()
    obj(batch)["loss"].backward()
    assert model.quality_embedding.fc2.weight.grad.abs().sum() > 0


def _objective_draws_40(model: SAINQF) -> None:
    """With no qualities in the batch the objective draws from the model's (here: 40 only)."""
    obj = Objective(model.train(), "jpeg", 75, amp="none")
    batch = _batch(1)
    torch.manual_seed(3)
    drawn = obj(batch)
    fixed = obj({**batch, "quality": torch.tensor([40, 40])})
    assert torch.allclose(drawn["fit2"], fixed["fit2"]) and torch.allclose(drawn["rel"], fixed["rel"])


def test_qualities_are_drawn_per_sample_in_the_model_s_range_and_coded_at_each():
    g = torch.Generator().manual_seed(0)
    q = draw_qualities(4000, (20, 95), g)
    assert q.dtype == torch.int64 and int(q.min()) == 20 and int(q.max()) == 95
    assert abs(q.float().mean().item() - 57.5) < 1.5
    with pytest.raises(ValueError, match="quality range"):
        draw_qualities(2, (50, 20))
    x = torch.rand(3, 3, 16, 16)
    qs = torch.tensor([30, 90, 30])
    out = roundtrip_per_quality(x, "jpeg", qs)
    for i, qf in enumerate(qs.tolist()):
        assert torch.equal(out[i], codec_roundtrip(x[i : i + 1], "jpeg", qf)[0][0])
    # the objective draws from the model's range (here one quality only) when the batch has none
    _objective_draws_40(_tiny(8, train_quality_range=[40, 40]))


def test_a_mixture_of_quality_ranges_draws_each_part_by_its_weight(tmp_path: Path):
    """``[model] train_quality_mix``: a part is picked by weight, then a quality uniformly in it;
    checked against the expected counts (a 40,000-sample draw: each count within 5 sigma)."""
    mix = ((20, 60, 1.0), (61, 95, 3.0))
    q = draw_qualities(40000, (20, 95), torch.Generator().manual_seed(0), mix=mix)
    assert q.dtype == torch.int64 and int(q.min()) == 20 and int(q.max()) == 95
    counts = torch.bincount(q, minlength=101).double()
    for lo, hi, w in mix:
        p = w / 4 / (hi - lo + 1)  # the probability of each quality of the part
        expected, sigma = 40000 * p, (40000 * p * (1 - p)) ** 0.5
        assert (counts[lo : hi + 1] - expected).abs().max() < 5 * sigma, (lo, hi)
    assert counts[:20].sum() == 0 and counts[96:].sum() == 0
    again = draw_qualities(40000, (20, 95), torch.Generator().manual_seed(0), mix=mix)
    assert torch.equal(q, again)  # reproducible from the generator (a resumed run draws the same)
    # the model carries it, checks it, and its weight file keeps it
    model = _tiny(9, train_quality_mix=[[20, 60, 1], [61, 95, 3]])
    assert model.train_quality_mix == mix
    loaded = sain.load_checkpoint(sain.save_weights(model, tmp_path / "mix.safetensors"))
    assert loaded.train_quality_mix == mix and loaded.config() == model.config()
    assert "train_quality_mix" not in _tiny(9).config()  # files without it read back as before
    for bad, message in (
        ([], "non-empty list"),
        ([[20, 60]], "each part is"),
        ([[20, 60, 0]], "positive number"),
        ([[60, 20, 1]], "within train_quality_range"),
        ([[10, 60, 1]], "within train_quality_range"),
        ([[20, 60.5, 1]], "integer in 1..100"),
    ):
        with pytest.raises(ValueError, match=message):
            _tiny(9, train_quality_mix=bad)
    # the objective draws from the model's mixture when the batch has no qualities
    _objective_draws_40(_tiny(8, train_quality_range=[20, 95], train_quality_mix=[[40, 40, 1]]))


def test_weight_file_round_trip_and_tiling(tmp_path: Path):
    model = _tiny(9, default_quality=60, train_quality_range=[30, 90]).eval()
    path = sain.save_weights(model, tmp_path / "qf.safetensors")
    loaded = sain.load_checkpoint(path)
    assert type(loaded) is SAINQF and loaded.config() == model.config()
    assert loaded.default_quality == 60 and loaded.train_quality_range == (30, 90)
    sd, sd2 = model.state_dict(), loaded.state_dict()
    assert sd.keys() == sd2.keys() and all(torch.equal(sd[k], sd2[k]) for k in sd)
    hr = torch.rand(1, 3, 40, 48)
    g = torch.Generator
    with torch.no_grad():
        lr = model.downscale(hr)
        assert torch.equal(loaded.downscale(hr), lr)
        assert torch.equal(
            loaded.upscale(lr, g().manual_seed(0), quality=35), model.upscale(lr, g().manual_seed(0), quality=35)
        )
        # the modulation is per sample, not per pixel: SAIN's radius, exact tiles
        assert model.receptive_radius("up") == sain.SAIN(2, e_blocks=1, v_blocks=2).receptive_radius("up")
        assert torch.allclose(tiling.tiled_downscale(model, hr, tile=16), lr, atol=1e-5)
        z = tiling.sample_latent(model, lr, seed=0)
        full = model.inverse(torch.cat((lr, z), 1))[0]
        assert torch.allclose(tiling.tiled_upscale(model, lr, tile=8, z=z), full, atol=1e-4)


def test_trains_two_steps_through_sain_train(tmp_path: Path):
    train = noise_images(tmp_path / "train", 3, 48, 0)
    out, rows = train_two_steps(
        tmp_path,
        'arch = "sain-qf"\nscale = 2\ne_blocks = 1\nv_blocks = 1\ncond_dim = 8\nembed_hidden = 16\n'
        "train_quality_range = [30, 90]",
        train,
        loss='codec = "jpeg"\nquality = 75',
    )
    model = sain.load_checkpoint(out / "model.safetensors")
    assert type(model) is SAINQF and model.train_quality_range == (30, 90) and model.cond_dim == 8
    assert set(TERMS) | {"loss"} <= set(rows[0])


def test_the_cpu_config_mirrors_the_fixed_quality_one():
    from sain.train import load_config
    from sain.train.presets import resolve_config

    qf = load_config(resolve_config("sain_x2_jpeg_qf_cpu"))
    fixed = load_config(resolve_config("sain_x2_jpeg_cpu"))
    assert qf.model.arch == "sain-qf" and qf.model.train_quality_range == [20, 95]
    for section in ("data", "loss"):
        assert getattr(qf, section) == getattr(fixed, section), section
    # the same optimiser, on the schedule the bundled fixed-QF export was trained with (its
    # config's 40,000 steps with `--set 'optim.milestones=[5600,6300]'`, exported at 6,800)
    assert dataclasses.replace(qf.optim, iters=fixed.optim.iters, milestones=fixed.optim.milestones) == fixed.optim
    assert (qf.optim.iters, list(qf.optim.milestones)) == (6800, [5600, 6300])
    assert qf.run.seed == fixed.run.seed and qf.run.out != fixed.run.out


def test_the_qf90_specialist_differs_from_the_quality_aware_run_only_in_arch_and_quality():
    """Issue 13's upper bound at QF 90 (configs/sain_x2_jpeg_q90_cpu.toml) must have the
    quality-aware run's budget exactly: a plain SAIN, trained and validated at QF 90."""
    from sain.train import load_config
    from sain.train.presets import resolve_config

    q90 = load_config(resolve_config("sain_x2_jpeg_q90_cpu")).to_dict()
    qf = load_config(resolve_config("sain_x2_jpeg_qf_cpu")).to_dict()
    assert q90["model"] == {**load_config(None).to_dict()["model"], "arch": "sain", "scale": 2}
    assert qf["model"]["arch"] == "sain-qf"
    q90.pop("model"), qf.pop("model")
    assert q90["loss"].pop("quality") == 90 and qf["loss"].pop("quality") == 75
    assert q90["run"].pop("out") != qf["run"].pop("out")
    assert q90 == qf


def test_the_top_weighted_run_differs_from_the_uniform_one_only_in_its_mixture():
    from sain.train import load_config
    from sain.train.presets import resolve_config

    top = load_config(resolve_config("sain_x2_jpeg_qf_top_cpu")).to_dict()
    uniform = load_config(resolve_config("sain_x2_jpeg_qf_cpu")).to_dict()
    assert top["model"].pop("train_quality_mix") == [[20, 60, 1], [61, 95, 3]]
    assert uniform["model"].pop("train_quality_mix") is None
    assert top["run"].pop("out") != uniform["run"].pop("out")
    assert top == uniform
