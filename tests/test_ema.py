"""The weight average of training (``optim.ema``, :mod:`sain.train.ema`): its arithmetic, its
place in checkpoints, packed states, exports and the log, and a resume that adds it."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import sain
from sain.train.ema import WeightEMA
from sain.train.portable import unpack

from test_train import assert_same_state, data, read_log, sain_cli, sain_train, tiny_config, write_config  # noqa: F401


def test_weight_ema_follows_the_formula():
    """d_n = min(decay, (1 + n) / (10 + n)); ema <- d_n ema + (1 - d_n) w; buffers copied."""
    torch.manual_seed(0)
    model = nn.BatchNorm1d(3)  # parameters and buffers
    ema = WeightEMA(model, decay=0.5)
    expected = model.weight.detach().clone()
    for n in range(1, 6):
        with torch.no_grad():
            model.weight.add_(torch.randn(3))
            model.running_mean.add_(1.0)
        d = min(0.5, (1 + n) / (10 + n))
        assert ema.rate() == pytest.approx(d)
        expected = d * expected + (1 - d) * model.weight.detach()
        ema.update(model)
        torch.testing.assert_close(ema.model.weight, expected)
        assert torch.equal(ema.model.running_mean, model.running_mean)
    assert ema.updates == 5 and not ema.model.weight.requires_grad
    # the rate rises with the number of updates up to the decay
    late = WeightEMA(model, decay=0.999, updates=10_000)
    assert late.rate() == 0.999 and WeightEMA(model, 0.999).rate() == pytest.approx(2 / 11)
    with pytest.raises(ValueError, match="decay"):
        WeightEMA(model, 1.0)


def _state(run):
    return torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def ema_cfg(data, tmp_path_factory):  # noqa: F811
    return write_config(tmp_path_factory.mktemp("cfg") / "ema.toml", tiny_config(data, optim={"ema": 0.9}))


@pytest.fixture(scope="module")
def ema_run(ema_cfg, tmp_path_factory):
    out = tmp_path_factory.mktemp("ema_run")
    assert sain_train(ema_cfg, "--out", out) == 0
    return out


def test_ema_run_exports_and_validates_the_average(ema_run):
    state = _state(ema_run)
    assert state["ema"]["updates"] == 6
    avg, raw = state["ema"]["model"], state["model"]
    assert avg.keys() == raw.keys()
    assert any(not torch.equal(avg[k], raw[k]) for k in raw)  # it is an average, not a copy
    final = sain.load_checkpoint(ema_run / "model.safetensors")
    for k, v in final.state_dict().items():
        assert torch.equal(v, avg[k].contiguous()), k
    assert final.metadata["weights"] == "ema" and json.loads(final.metadata["ema_decay"]) == 0.9
    best = sain.load_checkpoint(ema_run / "best.safetensors")
    assert best.metadata["weights"] == "ema"
    rows = read_log(ema_run)
    assert [r["val_psnr_y_ema"] != "" for r in rows] == [False, True, False, True, False, True]
    # best.safetensors holds the average of the step with the best average's validation
    vals = {int(r["step"]): float(r["val_psnr_y_ema"]) for r in rows if r["val_psnr_y_ema"]}
    assert json.loads(best.metadata["iterations"]) == max(vals, key=vals.get)
    assert json.loads(best.metadata["val_psnr_y"]) == pytest.approx(max(vals.values()), abs=1e-4)


def test_ema_resume_is_bit_identical(ema_run, ema_cfg, tmp_path):
    out = tmp_path / "half"
    assert sain_train(ema_cfg, "--out", out, "--iters", 3) == 0
    assert sain_train(ema_cfg, "--out", out, "--resume") == 0
    a, b = _state(ema_run), _state(out)
    assert b["ema"]["updates"] == 6
    assert_same_state(a["ema"]["model"], b["ema"]["model"])
    assert_same_state(a["model"], b["model"])


def test_packed_state_carries_the_average(ema_run, tmp_path):
    """Packed as its bf16 difference from the weights: close to float32 rounding, and much
    closer than the average rounded to bf16 itself would be."""
    packed = tmp_path / "state.safetensors"
    assert sain_cli("pack", ema_run / "checkpoint.pt", packed) == 0
    state, full = unpack(packed), _state(ema_run)
    assert state["ema"]["updates"] == 6
    got, ref = state["ema"]["model"], full["ema"]["model"]
    assert got.keys() == ref.keys()
    for k, v in ref.items():
        if not v.is_floating_point() or not v.abs().max() > 0:
            continue
        err = (got[k] - v).abs().max()
        assert err <= 1e-3 * v.abs().max(), k
        diff = (v - full["model"][k]).abs().max()
        assert err <= diff * 2**-8 + 1e-7, k  # the delta's bf16 rounding, no more


def test_resume_without_an_average_starts_one(data, tmp_path):  # noqa: F811
    """A run trained without EMA and resumed with it: the average starts from the resumed
    weights, and the log gains the column without losing a row."""
    cfg = write_config(tmp_path / "plain.toml", tiny_config(data))
    out = tmp_path / "run"
    assert sain_train(cfg, "--out", out, "--iters", 2) == 0
    before = _state(out)["model"]
    assert _state(out)["ema"] is None
    assert sain_train(cfg, "--out", out, "--iters", 3, "--resume", "--set", "optim.ema=0.99") == 0
    after = _state(out)
    assert after["ema"]["updates"] == 1
    d = 2 / 11  # the first update's rate
    for k, w0 in before.items():
        if w0.is_floating_point():
            torch.testing.assert_close(after["ema"]["model"][k], d * w0 + (1 - d) * after["model"][k])
    rows = read_log(out)
    assert [r["step"] for r in rows] == ["1", "2", "3"]
    assert rows[1]["val_psnr_y"] != "" and rows[1]["val_psnr_y_ema"] is None  # before the column existed
    assert rows[2]["val_psnr_y_ema"] != ""
    assert (out / "log.csv").read_bytes().count(b"\r\n") == 4


def test_bad_ema_value_is_a_config_error(data, tmp_path, capsys):  # noqa: F811
    cfg = write_config(tmp_path / "bad.toml", tiny_config(data, optim={"ema": 1.0}))
    assert sain_train(cfg, "--out", tmp_path / "x") == 2
    assert "optim.ema must be in [0, 1)" in capsys.readouterr().err
