"""The plug-in contract: an architecture defined in this file alone is built, saved, loaded,
tiled and trained through ``sain train`` with no edit anywhere else; unknown names fail
with one line naming the known ones; conditioned couplings stay exactly invertible."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor, nn

import sain
from _tiny_train import train_two_steps
from sain import cli, tiling
from sain.checkpoint import CheckpointError, load_checkpoint, save_weights
from sain.models import (
    ArchitectureError,
    EnhancedInvBlock,
    HaarDownsampling,
    InvBlock,
    RescalingModel,
    build_model,
    get_arch,
    list_archs,
    register,
)
from sain.models.receptive import chain_radius
from sain.models.registry import unregister
from sain.train import ConfigError, Objective, load_config
from sain.train.objective import get_objective


# -- a toy architecture, defined here and nowhere else ------------------------------------
class OneConv(nn.Module):
    """A one-convolution subnet (radius 1), zero-initialised like the dense block's output."""

    receptive_radius = 1

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, 1, 1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Toy(RescalingModel):
    """Haar, then ``blocks`` vanilla couplings with one-convolution subnets; IRN's loss."""

    objective = "irn"

    def __init__(self, scale: int = 2, blocks: int = 1):
        super().__init__(scale)
        self.blocks = blocks
        self.haar = HaarDownsampling(3)
        self.couplings = nn.ModuleList(InvBlock(12, subnet_constructor=OneConv) for _ in range(blocks))

    def config(self):
        return {"scale": self.scale, "blocks": self.blocks}

    def forward(self, x, return_logdet=False):
        self._check_hr(x)
        out, ld = self.haar(x)
        for op in self.couplings:
            out, d = op(out)
            ld = ld + d
        return (out, out[:, :3], ld) if return_logdet else (out, out[:, :3])

    def inverse(self, y, return_logdet=False):
        self._check_y(y)
        out, ld = y, y.new_zeros(y.shape[0])
        for op in reversed(self.couplings):
            out, d = op(out, rev=True)
            ld = ld + d
        out, d = self.haar(out, rev=True)
        return (out, y[:, :3], ld + d) if return_logdet else (out, y[:, :3])

    def sample_latent(self, lr, generator=None, chunk=None):
        n, _, h, w = lr.shape
        return torch.zeros(n, self.latent_channels, h, w, dtype=lr.dtype, device=lr.device)

    def receptive_radius(self, direction):
        return chain_radius([self.haar, *self.couplings], direction, self.scale, sends_enhanced_lr=False)


@pytest.fixture
def toy_arch():
    register("toy")(Toy)
    yield Toy
    unregister("toy")


def test_registry_lists_the_paper_models_and_refuses_unknown_names():
    assert {"sain", "irn"} <= set(list_archs())
    assert get_arch("sain") is sain.SAIN and get_arch("irn") is sain.IRN
    with pytest.raises(ArchitectureError, match=r"unknown architecture 'nope' \(known: sain, irn"):
        build_model("nope", scale=2)
    with pytest.raises(CheckpointError, match="unknown option 'blocks_per_level'"):
        build_model("sain", scale=2, blocks_per_level=3)
    with pytest.raises(ValueError, match="already registered"):
        register("sain")(Toy)
    assert get_arch("sain") is sain.SAIN


def test_a_model_naming_no_or_an_unknown_objective_is_refused(toy_arch):
    class NoLoss(Toy):
        objective = ""

    class BadLoss(Toy):
        objective = "nope"

    with pytest.raises(ValueError, match="names no training objective"):
        Objective(NoLoss(), "jpeg", 75)
    with pytest.raises(ValueError, match=r"unknown objective 'nope' \(known: sain, irn"):
        Objective(BadLoss(), "jpeg", 75)
    assert get_objective("sain").codec_targets and not get_objective("irn").codec_targets


def test_toy_architecture_saves_loads_and_tiles(toy_arch, tmp_path):
    model = Toy(2, blocks=2).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.05)
    path = save_weights(model, tmp_path / "toy.safetensors")
    loaded = load_checkpoint(path)
    assert type(loaded) is Toy and loaded.config() == {"scale": 2, "blocks": 2}
    hr = torch.rand(1, 3, 40, 48)
    assert torch.equal(loaded.downscale(hr), model.downscale(hr))
    # 2 HR px per LR px and radius 1 per subnet: y1 of block 1 sees 2 px (F), its y2 4 (G, H),
    # and y1 of block 2 = y1 + F(y2) sees 4 + 2
    assert tiling.receptive_radius(model, "down") == 6
    tiled = tiling.tiled_downscale(model, hr, tile=16)
    assert torch.allclose(tiled, model.downscale(hr), atol=1e-6)


def test_toy_architecture_trains_two_steps_through_sain_train(toy_arch, tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "train").mkdir()
    for i in range(3):
        img = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
        Image.fromarray(img).save(tmp_path / "train" / f"{i}.png")
    out, rows = train_two_steps(tmp_path, 'arch = "toy"\nscale = 2\nblocks = 2', tmp_path / "train", patch=16)
    model = load_checkpoint(out / "model.safetensors")
    assert type(model) is Toy and model.blocks == 2
    assert list(rows[0])[:5] == ["step", "fit", "latent", "rec", "loss"]
    assert load_config(out / "config.toml").model.to_dict() == {"arch": "toy", "scale": 2, "blocks": 2}


def test_model_config_is_typed_by_the_architecture(toy_arch):
    cfg = load_config(None, ["model.arch=toy", "model.blocks=3"])
    assert cfg.model.build_kwargs() == {"scale": 2, "blocks": 3}
    with pytest.raises(ConfigError, match="unknown key 'e_blocks' for arch 'toy'"):
        load_config(None, ["model.arch=toy", "model.e_blocks=3"])
    with pytest.raises(ConfigError, match="blocks must be int"):
        load_config(None, ["model.arch=toy", "model.blocks='x'"])
    with pytest.raises(ConfigError, match="model.arch must be one of sain, irn"):
        load_config(None, ["model.arch=nope"])
    # switching the architecture keeps the scale and takes the new one's defaults
    cfg = load_config(None, ["model.scale=4", "model.arch=irn"])
    assert cfg.model.to_dict() == {"arch": "irn", "scale": 4, "blocks_per_level": 8}


def test_unknown_architecture_in_a_weight_file_is_one_line(tmp_path):
    path = save_weights(sain.IRN(2, blocks_per_level=1), tmp_path / "w.safetensors")
    from safetensors.torch import load_file, save_file

    save_file(
        load_file(path),
        str(tmp_path / "x.safetensors"),
        metadata={"arch": "mystery", "config": "{}", "format": "sain-weights-v1"},
    )
    with pytest.raises(CheckpointError, match=r"unknown architecture 'mystery' \(known: sain, irn"):
        load_checkpoint(tmp_path / "x.safetensors")
    save_file(
        load_file(path),
        str(tmp_path / "y.safetensors"),
        metadata={"arch": "irn", "config": '{"scale": 2, "blocks_per_level": 1}', "format": "sain-weights-v9"},
    )
    with pytest.raises(CheckpointError, match="unsupported weight format 'sain-weights-v9'"):
        load_checkpoint(tmp_path / "y.safetensors")


# -- conditioned couplings -----------------------------------------------------------------
class FiLMConv(nn.Module):
    """A subnet modulated by a condition vector: conv, then per-channel scale and shift."""

    receptive_radius = 1

    def __init__(self, c_in: int, c_out: int, cond_dim: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.film = nn.Linear(cond_dim, 2 * c_out)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        gamma, beta = self.film(cond).to(x.dtype)[:, :, None, None].chunk(2, 1)
        return self.conv(x) * (1 + gamma) + beta


@pytest.mark.parametrize("block", [InvBlock, EnhancedInvBlock])
def test_conditioned_coupling_is_invertible_and_depends_on_the_condition(block):
    torch.manual_seed(0)
    op = block(12, subnet_constructor=FiLMConv, cond_dim=4).double()
    x = torch.randn(2, 12, 6, 6, dtype=torch.float64)
    c1, c2 = torch.randn(2, 4, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    y = op(x, cond=c1)[0]
    assert torch.allclose(op(y, rev=True, cond=c1)[0], x, atol=1e-12)
    assert not torch.allclose(op(x, cond=c2)[0], y)
    with pytest.raises(ValueError, match="cond must be"):
        op(x)
    with pytest.raises(ValueError, match="takes no condition"):
        block(12)(x, cond=c1)


def test_run_init_starts_a_fresh_run_from_trained_weights(tmp_path):
    """``run.init``: same architecture as it is; SAIN-QF from a plain SAIN (identity FiLM)."""
    rng = np.random.default_rng(1)
    (tmp_path / "train").mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(tmp_path / "train" / f"{i}.png")
    src = sain.SAIN(2, e_blocks=1, v_blocks=1)
    with torch.no_grad():
        for p in src.parameters():
            p.normal_(0, 0.02)
    weights = save_weights(src, tmp_path / "src.safetensors")
    common = f"""
[data]
train = {json.dumps(str(tmp_path / "train"))}
val_holdout = 1
val_crop = 32
patch = 16
batch = 2
workers = 0
[optim]
iters = 1
lr = 1e-30
weight_decay = 0.0
[run]
threads = 1
amp = "none"
init = {json.dumps(str(weights))}
"""
    for arch in ("sain", "sain-qf"):
        config = tmp_path / f"{arch}.toml"
        config.write_text(f'[model]\narch = "{arch}"\nscale = 2\ne_blocks = 1\nv_blocks = 1\n' + common)
        out = tmp_path / f"run_{arch}"
        assert cli.main(["train", str(config), "--out", str(out), "--no-progress"]) == 0
        trained = load_checkpoint(out / "model.safetensors").state_dict()
        for k, v in src.state_dict().items():
            assert torch.allclose(trained[k], v, atol=1e-6), k
    config.write_text(config.read_text().replace('"sain-qf"', '"irn"').replace("e_blocks = 1\nv_blocks = 1\n", ""))
    assert cli.main(["train", str(config), "--out", str(tmp_path / "run_irn"), "--no-progress"]) == 2
