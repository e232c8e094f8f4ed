"""Tests of weight files: reference checkpoints, the project's safetensors files, errors.

The reference networks below are an independent re-implementation (nothing is imported
from ``sain.models``) that follows the structure and parameter names of the public
reference code (IRN: ``operations = [Haar, blocks..., Haar, blocks...]``; SAIN:
``haar_operations`` / ``down_operations`` / ``comp_operations`` / ``gmm.gmm_para``, Haar
filters stored as a frozen ``nn.Parameter`` named ``haar_weights``). Their state dicts are
written with ``torch.save`` exactly as the reference training code writes them, then
loaded with :func:`sain.load_checkpoint`, and both networks must agree.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import sain
from sain import CheckpointError, load_checkpoint, save_weights


# ==================================================================================
# Independent re-implementation of the reference networks
# ==================================================================================
class RefDenseBlock(nn.Module):
    def __init__(self, cin, cout, gc=32):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, gc, 3, 1, 1)
        self.conv2 = nn.Conv2d(cin + gc, gc, 3, 1, 1)
        self.conv3 = nn.Conv2d(cin + 2 * gc, gc, 3, 1, 1)
        self.conv4 = nn.Conv2d(cin + 3 * gc, gc, 3, 1, 1)
        self.conv5 = nn.Conv2d(cin + 4 * gc, cout, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x):
        feats = [x]
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            feats.append(self.lrelu(conv(torch.cat(feats, 1))))
        return self.conv5(torch.cat(feats, 1))


class RefHaarDownsampling(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.cin = cin
        w = torch.ones(4, 1, 2, 2)
        w[1, 0, 0, 1] = w[1, 0, 1, 1] = -1
        w[2, 0, 1, 0] = w[2, 0, 1, 1] = -1
        w[3, 0, 1, 0] = w[3, 0, 0, 1] = -1
        self.haar_weights = nn.Parameter(torch.cat([w] * cin, 0))
        self.haar_weights.requires_grad = False

    def forward(self, x, rev=False):
        n, c, h, w = x.shape
        if not rev:
            out = F.conv2d(x, self.haar_weights, stride=2, groups=self.cin) / 4.0
            out = out.reshape(n, self.cin, 4, h // 2, w // 2).transpose(1, 2)
            return out.reshape(n, 4 * self.cin, h // 2, w // 2)
        out = x.reshape(n, 4, self.cin, h, w).transpose(1, 2).reshape(n, c, h, w)
        return F.conv_transpose2d(out, self.haar_weights, stride=2, groups=self.cin)


class RefInvBlockExp(nn.Module):
    def __init__(self, channels, split=3, clamp=1.0):
        super().__init__()
        self.l1, self.l2, self.clamp = split, channels - split, clamp
        self.F = RefDenseBlock(self.l2, self.l1)
        self.G = RefDenseBlock(self.l1, self.l2)
        self.H = RefDenseBlock(self.l1, self.l2)

    def _s(self, t):
        return self.clamp * (torch.sigmoid(self.H(t)) * 2 - 1)

    def forward(self, x, rev=False):
        x1, x2 = x.narrow(1, 0, self.l1), x.narrow(1, self.l1, self.l2)
        if not rev:
            y1 = x1 + self.F(x2)
            y2 = x2.mul(torch.exp(self._s(y1))) + self.G(y1)
        else:
            y2 = (x2 - self.G(x1)).div(torch.exp(self._s(x1)))
            y1 = x1 - self.F(y2)
        return torch.cat((y1, y2), 1)


class RefEnhancedBlock(RefInvBlockExp):
    def __init__(self, channels, split=3, clamp=1.0):
        super().__init__(channels, split, clamp)
        self.E = RefDenseBlock(self.l2, self.l1)

    def forward(self, x, rev=False):
        x1, x2 = x.narrow(1, 0, self.l1), x.narrow(1, self.l1, self.l2)
        if not rev:
            self.LR = x1 + self.E(x2)
            y1 = self.LR - self.F(x2)
            y2 = x2.mul(torch.exp(self._s(y1))) + self.G(y1)
        else:
            y2 = (x2 - self.G(x1)).div(torch.exp(self._s(x1)))
            self.LR = x1 + self.F(y2)
            y1 = self.LR - self.E(y2)
        return torch.cat((y1, y2), 1)


class RefGMM(nn.Module):
    def __init__(self, k=5):
        super().__init__()
        self.gmm_para = nn.Parameter(1e-4 * torch.randn(3, k))


class RefSAINet(nn.Module):
    def __init__(self, down_num=1, e_blocks=5, v_blocks=3, gmm_components=5):
        super().__init__()
        c, haar = 3, []
        for _ in range(down_num):
            haar.append(RefHaarDownsampling(c))
            c *= 4
        self.haar_operations = nn.ModuleList(haar)
        self.down_operations = nn.ModuleList(RefEnhancedBlock(c) for _ in range(e_blocks))
        self.comp_operations = nn.ModuleList(RefInvBlockExp(c) for _ in range(v_blocks))
        self.gmm = RefGMM(gmm_components)

    def forward(self, x, rev=False):
        ops = [*self.haar_operations, *self.down_operations, *self.comp_operations]
        for op in reversed(ops) if rev else ops:
            x = op(x, rev)
        return x, self.down_operations[-1].LR


class RefIRN(nn.Module):
    def __init__(self, down_num=1, blocks=8):
        super().__init__()
        c, ops = 3, []
        for _ in range(down_num):
            ops.append(RefHaarDownsampling(c))
            c *= 4
            ops.extend(RefInvBlockExp(c) for _ in range(blocks))
        self.operations = nn.ModuleList(ops)

    def forward(self, x, rev=False):
        for op in reversed(self.operations) if rev else self.operations:
            x = op(x, rev)
        return x


def randomize(module: nn.Module, seed: int, std: float = 0.02) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.requires_grad:  # leave the Haar filters alone
                p.add_(std * torch.randn(p.shape, generator=g))
    return module.eval()


def image(n: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


# (reference factory, HR size, expected arch, expected config)
REFERENCES = {
    "sain_x2": (lambda: RefSAINet(1), 8, "sain", {"scale": 2, "e_blocks": 5, "v_blocks": 3, "gmm_components": 5}),
    "sain_x4": (
        lambda: RefSAINet(2, e_blocks=2, v_blocks=1, gmm_components=3),
        16,
        "sain",
        {"scale": 4, "e_blocks": 2, "v_blocks": 1, "gmm_components": 3},
    ),
    "irn_x2": (lambda: RefIRN(1, 8), 8, "irn", {"scale": 2, "blocks_per_level": 8}),
    "irn_x4": (lambda: RefIRN(2, 2), 16, "irn", {"scale": 4, "blocks_per_level": 2}),
}
WRAPPINGS = ("plain", "module_prefix", "state_dict_wrapper")


@pytest.fixture(scope="module", params=sorted(REFERENCES))
def reference(request):
    factory, size, arch, config = REFERENCES[request.param]
    torch.manual_seed(0)  # the fresh reference weights (the GMM's) come from the global RNG
    ref = randomize(factory(), seed=42)
    return ref, size, arch, config


def save_reference(ref: nn.Module, path: Path, wrapping: str) -> Path:
    sd = ref.state_dict()
    assert any(k.endswith("haar_weights") for k in sd)  # as the reference code writes it
    if wrapping == "module_prefix":
        sd = {"module." + k: v for k, v in sd.items()}
    elif wrapping == "state_dict_wrapper":
        sd = {"state_dict": sd}
    torch.save(sd, path)
    return path


def ref_outputs(ref: nn.Module, x: torch.Tensor, z: torch.Tensor):
    """(y, lr) forward and (x_hat, lr_rec) inverse of ``cat(lr, z)`` from a reference net."""
    with torch.no_grad():
        if isinstance(ref, RefSAINet):
            y, lr = ref(x)
            lr = lr.clone()
            x_hat, lr_rec = ref(torch.cat((lr, z), 1), rev=True)
            return y, lr, x_hat, lr_rec.clone()
        y = ref(x)
        lr = y[:, :3]
        y_in = torch.cat((lr, z), 1)
        return y, lr, ref(y_in, rev=True), lr


# ==================================================================================
# Reference checkpoints
# ==================================================================================
@pytest.mark.parametrize("wrapping", WRAPPINGS)
def test_reference_checkpoint_matches(reference, wrapping, tmp_path):
    ref, size, arch, config = reference
    path = save_reference(ref, tmp_path / "ref.pth", wrapping)
    model = load_checkpoint(path)
    assert model.arch == arch
    assert model.config() == config
    assert not model.training
    assert next(model.parameters()).dtype == torch.float32

    x = image(2, size)
    s = config["scale"]
    z = torch.randn(2, 3 * (s * s - 1), size // s, size // s, generator=torch.Generator().manual_seed(1))
    y_ref, lr_ref, xh_ref, lrr_ref = ref_outputs(ref, x, z)
    fresh = type(model)(**model.config()).eval()  # every coupling the identity
    with torch.no_grad():
        assert (fresh(x)[0] - y_ref).abs().max() > 0.1  # the weights matter for this comparison
    with torch.no_grad():
        y, lr = model(x)
        x_hat, lr_rec = model.inverse(torch.cat((lr, z), 1))
    # float32 precision; the inverse of a random latent reaches |x| ~ 20, hence a small rtol too
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(lr, lr_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(x_hat, xh_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(lr_rec, lrr_ref, atol=1e-5, rtol=1e-5)


def test_reference_weights_are_really_loaded(tmp_path):
    """Non-trivial weights: a loaded model differs from a fresh one, and the GMM is copied."""
    torch.manual_seed(0)
    ref = randomize(RefSAINet(1, e_blocks=1, v_blocks=1), seed=5)
    model = load_checkpoint(save_reference(ref, tmp_path / "r.pth", "plain"))
    torch.testing.assert_close(model.state_dict()["gmm.gmm_para"], ref.gmm.gmm_para.detach(), atol=0, rtol=0)
    x = image(1, 8)
    fresh = type(model)(**model.config()).eval()
    with torch.no_grad():
        assert (model(x)[1] - fresh(x)[1]).abs().max() > 1e-3


# ==================================================================================
# The project's weight files
# ==================================================================================
@pytest.mark.parametrize(
    "make",
    [lambda: sain.SAIN(2, e_blocks=2, v_blocks=1, gmm_components=4), lambda: sain.IRN(4, blocks_per_level=1)],
    ids=["sain", "irn"],
)
def test_save_weights_round_trip(make, tmp_path):
    torch.manual_seed(3)
    model = randomize(make(), seed=7)
    path = save_weights(model, tmp_path / "sub" / "w.safetensors", note="unit test", steps=12, data={"train": "DIV2K"})
    assert path.is_file()
    assert not [p for p in path.parent.iterdir() if p.name != path.name]  # no temporary left behind

    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        keys = set(f.keys())
    assert keys == set(model.state_dict())
    assert meta["arch"] == model.arch
    assert json.loads(meta["config"]) == model.config()
    assert meta["note"] == "unit test"
    assert json.loads(meta["steps"]) == 12
    assert json.loads(meta["data"]) == {"train": "DIV2K"}

    loaded = load_checkpoint(path)
    assert type(loaded) is type(model)
    assert loaded.config() == model.config()
    assert loaded.metadata["note"] == "unit test"
    for k, v in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v, atol=0, rtol=0)
    x = image(1, 8 if model.scale == 2 else 16)
    with torch.no_grad():
        y0, lr0 = model(x)
        y1, lr1 = loaded(x)
        g = torch.Generator().manual_seed(0)
        hr0 = model.upscale(lr0, g)
        hr1 = loaded.upscale(lr1, torch.Generator().manual_seed(0))
    torch.testing.assert_close(y1, y0, atol=0, rtol=0)
    torch.testing.assert_close(lr1, lr0, atol=0, rtol=0)
    torch.testing.assert_close(hr1, hr0, atol=0, rtol=0)


def test_weights_file_without_suffix_is_recognised(tmp_path):
    model = sain.SAIN(2, e_blocks=1, v_blocks=0)
    path = save_weights(model, tmp_path / "weights.bin")
    assert load_checkpoint(path).config() == model.config()


def test_weights_file_overwrite(tmp_path):
    path = tmp_path / "w.safetensors"
    save_weights(sain.IRN(2, blocks_per_level=1), path)
    save_weights(sain.IRN(2, blocks_per_level=2), path)
    assert load_checkpoint(path).config()["blocks_per_level"] == 2


# ==================================================================================
# Errors
# ==================================================================================
def expect_error(path) -> str:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    msg = str(info.value)
    assert msg and "\n" not in msg, f"message should be one line: {msg!r}"
    assert isinstance(info.value, ValueError)
    return msg


def small_reference_sd() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return RefSAINet(1, e_blocks=2, v_blocks=1).state_dict()


def test_error_missing_file(tmp_path):
    expect_error(tmp_path / "nope.pth")
    expect_error(tmp_path)  # a directory is not a file either


def test_error_text_file(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("these are not the weights you are looking for\n" * 10)
    expect_error(p)


def test_error_random_bytes(tmp_path):
    p = tmp_path / "model.pth"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    expect_error(p)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    expect_error(empty)


def test_error_truncated_safetensors(tmp_path):
    p = save_weights(sain.SAIN(2, e_blocks=1, v_blocks=0), tmp_path / "w.safetensors")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    expect_error(p)
    q = tmp_path / "header_only.safetensors"
    q.write_bytes(data[:20])
    expect_error(q)


def test_error_unrelated_state_dict(tmp_path):
    p = tmp_path / "other.pth"
    torch.save({"foo.weight": torch.zeros(3, 3), "foo.bias": torch.zeros(3)}, p)
    expect_error(p)
    q = tmp_path / "not_a_dict.pth"
    torch.save(torch.zeros(3), q)
    expect_error(q)


def test_error_wrong_shape(tmp_path):
    sd = small_reference_sd()
    sd["down_operations.1.G.conv3.weight"] = torch.zeros(32, 3 + 64, 5, 5)
    p = tmp_path / "bad_shape.pth"
    torch.save(sd, p)
    assert "down_operations.1.G.conv3.weight" in expect_error(p)


def test_error_missing_key(tmp_path):
    sd = small_reference_sd()
    del sd["comp_operations.0.H.conv5.bias"]
    p = tmp_path / "missing.pth"
    torch.save(sd, p)
    assert "comp_operations.0.H.conv5.bias" in expect_error(p)


def test_error_unexpected_key(tmp_path):
    sd = small_reference_sd()
    sd["down_operations.0.extra.weight"] = torch.zeros(1)
    p = tmp_path / "extra.pth"
    torch.save(sd, p)
    expect_error(p)


def test_error_irn_wrong_width(tmp_path):
    torch.manual_seed(0)
    sd = RefIRN(1, 1).state_dict()
    sd = {
        k: (torch.zeros(v.shape[0], v.shape[1] + 1, *v.shape[2:]) if k == "operations.1.F.conv1.weight" else v)
        for k, v in sd.items()
    }
    p = tmp_path / "irn_bad.pth"
    torch.save(sd, p)
    expect_error(p)


def _side_effect(path: str) -> None:  # pragma: no cover - must never run during loading
    Path(path).write_text("pwned")


class _Evil:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (_side_effect, (self.path,))


class _Plain:
    def __init__(self):
        self.value = 3


def test_pickle_with_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "marker.txt"
    sd = small_reference_sd()
    p = tmp_path / "evil.pth"
    torch.save({"state_dict": sd, "payload": _Evil(str(marker))}, p)
    assert not marker.exists()
    expect_error(p)
    assert not marker.exists(), "loading executed code from the pickle"


def test_pickle_with_arbitrary_object_is_refused(tmp_path):
    p = tmp_path / "object.pth"
    torch.save({"state_dict": small_reference_sd(), "trainer": _Plain()}, p)
    expect_error(p)
    q = tmp_path / "object_only.pth"
    torch.save(_Plain(), q)
    expect_error(q)
