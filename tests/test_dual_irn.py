"""Dual-IRN, the paper's asymmetric baseline (SAIN_SPEC section 3): U-IRN exactly invertible,
D-IRN alone downscales, every loss term alive and the loss going down, U-IRN's restoration
gradients reaching D-IRN through the differentiable JPEG, weight files, exact tiling, and
``sain train`` / ``sain eval`` end to end. Tiny networks (one block per level, 32 px)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import sain
from _tiny_train import noise_images, train_two_steps
from sain import cli, tiling
from sain.checkpoint import load_checkpoint, save_weights
from sain.errors import CheckpointError
from sain.imaging.resize import bicubic_down
from sain.models import ArchitectureError, build_model, get_arch, infer_arch
from sain.models.dual_irn import DualIRN
from sain.train import Objective
from sain.train.objective import get_objective

TERMS = ["fit", "latent_d", "comp", "sim", "latent_u", "rec"]


def _tiny(seed: int = 0, std: float = 0.05) -> DualIRN:
    """One block per level, weights perturbed so that neither IRN is the identity."""
    torch.manual_seed(seed)
    model = DualIRN(2, blocks_per_level=1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * std)
    return model


def _batch(seed: int = 0, n: int = 2, size: int = 32) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    # smooth random images (bicubic-upsampled noise) plus a little texture
    hr = torch.nn.functional.interpolate(
        torch.rand(n, 3, size // 4, size // 4, generator=g), scale_factor=4, mode="bilinear", align_corners=False
    )
    hr = (hr + 0.05 * torch.rand(n, 3, size, size, generator=g)).clamp(0, 1)
    return {"hr": hr, "lr_ref": bicubic_down(hr, 2).clamp(0, 1)}


def test_registered_with_its_objective_and_config():
    assert get_arch("dual-irn") is DualIRN
    model = build_model("dual-irn", scale=2, blocks_per_level=1)
    assert model.config() == {"scale": 2, "blocks_per_level": 1}
    assert DualIRN.from_config(model.config()).config() == model.config()
    assert isinstance(model.d_irn, sain.IRN) and isinstance(model.u_irn, sain.IRN)
    assert model.d_irn is not model.u_irn
    spec = get_objective(DualIRN.objective)
    assert spec.name == "dual-irn" and spec.codec_worker
    # the paper's size: two full IRNs, twice IRN x2's 1,667,952 parameters
    n = sum(p.numel() for p in DualIRN(2).parameters())
    assert n == 2 * sum(p.numel() for p in sain.IRN(2).parameters()) == 2 * 1_667_952
    # no reference layout: a Dual-IRN state dict is not claimed by IRN (or anything else)
    assert DualIRN.infer_config(model.state_dict()) is None
    with pytest.raises(ArchitectureError, match="not a state dict of any known architecture"):
        infer_arch(model.state_dict())


def test_u_irn_is_exactly_invertible_in_float64():
    model = _tiny(1, std=0.1).double().eval()
    x = torch.rand(2, 3, 16, 24, dtype=torch.float64)
    y, lr, ld = model(x, return_logdet=True)
    assert y.shape == (2, 12, 8, 12) and lr.shape == (2, 3, 8, 12)
    x_back, lr_back, ld_back = model.inverse(y, return_logdet=True)
    assert torch.allclose(x_back, x, atol=1e-12)
    assert torch.equal(lr_back, y[:, :3])
    assert torch.allclose(ld, -ld_back, atol=1e-9)
    # the forward pair is U-IRN's: same output and log-determinant as U-IRN alone
    y_u, _, ld_u = model.u_irn(x, return_logdet=True)
    assert torch.equal(y, y_u) and torch.equal(ld, ld_u)
    # and the upscale is U-IRN's inverse on (LR, z ~ N(0, I))
    hr = model.upscale(lr, generator=torch.Generator().manual_seed(3))
    z = torch.randn(2, 9, 8, 12, generator=torch.Generator().manual_seed(3), dtype=torch.float32).double()
    assert torch.allclose(hr, model.u_irn.inverse(torch.cat((lr, z), 1))[0], atol=1e-12)


def test_run_init_from_an_irn_copies_it_into_both_irns():
    torch.manual_seed(5)
    irn = sain.IRN(2, blocks_per_level=1)
    with torch.no_grad():
        for p in irn.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    irn.eval()
    model = DualIRN.from_pretrained(irn, {"scale": 2, "blocks_per_level": 1}).eval()
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        y_irn, lr_irn = irn(x)
        y, lr = model(x)
        # D-IRN sends IRN's thumbnail and U-IRN is IRN: the same restoration from the same latent
        assert torch.equal(lr, lr_irn) and torch.equal(y, y_irn)
        g = torch.Generator
        assert torch.equal(
            model.upscale(lr, generator=g().manual_seed(1)), irn.upscale(lr, generator=g().manual_seed(1))
        )
    # two copies, not one module: training U must not move D
    assert model.d_irn.operations[1].F.conv1.weight.data_ptr() != model.u_irn.operations[1].F.conv1.weight.data_ptr()
    # from a Dual-IRN of the same configuration, as every architecture
    again = DualIRN.from_pretrained(model, model.config())
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), model.state_dict().values(), strict=True))
    with pytest.raises(CheckpointError, match="scale and blocks_per_level must match"):
        DualIRN.from_pretrained(irn, {"scale": 2, "blocks_per_level": 2})
    with pytest.raises(CheckpointError, match="cannot initialise"):
        DualIRN.from_pretrained(sain.SAIN(2, e_blocks=1, v_blocks=1), {"scale": 2, "blocks_per_level": 1})


def test_downscale_is_d_irn_alone():
    model = _tiny(2).eval()
    x = torch.rand(1, 3, 24, 32)
    with torch.no_grad():
        y, lr = model(x)
        assert torch.equal(model.downscale(x), lr)
        assert torch.equal(lr, model.d_irn(x)[1])
        # ... which is not U-IRN's simulated (compressed) LR
        assert not torch.allclose(lr, y[:, :3], atol=1e-4)
    assert model.receptive_radius("down") == model.d_irn.receptive_radius("down")
    assert model.receptive_radius("up") == model.u_irn.receptive_radius("up")
    with pytest.raises(ValueError, match="direction"):
        model.receptive_radius("sideways")
    with pytest.raises(ValueError, match="multiple of the scale"):
        model.downscale(torch.rand(1, 3, 15, 16))


def test_every_term_is_alive_and_the_loss_decreases_on_a_fixed_batch():
    model = _tiny(3).train()
    obj = Objective(model, "jpeg", 75, lambda_fit=4.0, lambda_rec=1.0, lambda_latent=1.0, amp="none")
    batch = _batch(0)
    terms = obj(batch)
    assert list(terms) == [*TERMS, "loss"]
    for k, v in terms.items():
        assert v.dtype == torch.float32 and v.dim() == 0 and torch.isfinite(v), k
        assert v.item() > 0, k
    expected = (
        terms["rec"] + 4 * (terms["fit"] + (terms["comp"] + terms["sim"]) / 2) + terms["latent_d"] + terms["latent_u"]
    )
    assert torch.allclose(terms["loss"], expected)
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


def test_the_restoration_term_trains_d_irn_through_the_differentiable_jpeg():
    model = _tiny(4).train()
    obj = Objective(model, "jpeg", 75, amp="none")
    terms = obj(_batch(1))
    terms["rec"].backward()
    d_grads = [p.grad for p in model.d_irn.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in d_grads)
    # D-IRN's LR is y1 = x1 + F(x2) of its (single) block: F is what the restoration trains
    # (G and H shape only z_D, which the restoration never sees)
    block = model.d_irn.operations[1]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in block.F.parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in block.G.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.u_irn.parameters())
    # the fit term of D alone does not touch U-IRN
    model.zero_grad(set_to_none=True)
    obj(_batch(1))["fit"].backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.u_irn.parameters())


def test_weight_file_round_trip(tmp_path: Path):
    model = _tiny(5).eval()
    path = save_weights(model, tmp_path / "dual.safetensors")
    loaded = load_checkpoint(path)
    assert type(loaded) is DualIRN and loaded.config() == {"scale": 2, "blocks_per_level": 1}
    sd, sd2 = model.state_dict(), loaded.state_dict()
    assert sd.keys() == sd2.keys() and all(torch.equal(sd[k], sd2[k]) for k in sd)
    assert any(k.startswith("d_irn.operations.") for k in sd) and any(k.startswith("u_irn.operations.") for k in sd)
    hr = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        lr = model.downscale(hr)
        assert torch.equal(loaded.downscale(hr), lr)
        g = torch.Generator
        assert torch.equal(loaded.upscale(lr, g().manual_seed(0)), model.upscale(lr, g().manual_seed(0)))


def test_tiled_equals_untiled():
    model = _tiny(6).eval()
    hr = torch.rand(1, 3, 40, 48)
    with torch.no_grad():
        lr = model.downscale(hr)
        assert torch.allclose(tiling.tiled_downscale(model, hr, tile=16), lr, atol=1e-5)
        z = tiling.sample_latent(model, lr, seed=0)
        full = model.inverse(torch.cat((lr, z), 1))[0]
        assert torch.allclose(tiling.tiled_upscale(model, lr, tile=8, z=z), full, atol=1e-5)
        assert torch.allclose(
            tiling.tiled_upscale(model, lr, tile=8, seed=0),
            model.upscale(lr, torch.Generator().manual_seed(0)),
            atol=1e-5,
        )


def test_trains_two_steps_through_sain_train_and_evaluates(tmp_path: Path):
    train = noise_images(tmp_path / "train", 3, 48, 0)
    out, rows = train_two_steps(
        tmp_path, 'arch = "dual-irn"\nscale = 2\nblocks_per_level = 1', train, loss='codec = "jpeg"\nquality = 75'
    )
    model = load_checkpoint(out / "model.safetensors")
    assert type(model) is DualIRN and model.config() == {"scale": 2, "blocks_per_level": 1}
    assert set(TERMS) | {"loss"} <= set(rows[0])

    weights = tmp_path / "dual_tiny.safetensors"
    weights.write_bytes((out / "model.safetensors").read_bytes())
    data = noise_images(tmp_path / "eval" / "Tiny", 2, 32, 1)
    report = tmp_path / "report"
    assert (
        cli.main(
            [
                "eval",
                "--model",
                str(weights),
                "--model",
                "bicubic",
                "--data",
                str(data),
                "--quality",
                "50,90",
                "--out",
                str(report),
                "--threads",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    records = json.loads((report / "results.json").read_text())
    mine = [r for r in records if r["model"] == "dual_tiny"]
    assert [r["quality"] for r in mine] == [50, 90]
    assert "dual_tiny" in (report / "results.md").read_text()
