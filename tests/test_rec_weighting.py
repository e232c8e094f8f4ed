"""The reconstruction term's weighting (``[loss] rec_weighting``, sain.train.objective.rec_term).

"log" must keep the value of the papers' term and change only its gradient, to that of the
batch's mean log error scaled by the mean error; these tests check both against a
formula written out independently, and that the config value reaches the trainer.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from _tiny_train import train_with_each
from sain.train import ConfigError, load_config
from sain.train.objective import REC_WEIGHTINGS, Objective, l1, rec_term
from sain.train.presets import resolve_config


def _pair(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(4, 3, 8, 8, generator=g, dtype=torch.float32)
    # images with very different errors: 0.01, 0.05, 0.2, 0.5 times noise
    scale = torch.tensor([0.01, 0.05, 0.2, 0.5], dtype=torch.float32).view(4, 1, 1, 1)
    x_hat = (x + scale * torch.randn(x.shape, generator=g, dtype=torch.float32)).requires_grad_(True)
    return x_hat, x


@pytest.mark.parametrize("weighting", REC_WEIGHTINGS)
def test_the_value_is_the_papers_l1(weighting):
    x_hat, x = _pair()
    torch.testing.assert_close(rec_term(x_hat, x, weighting), l1(x_hat, x), rtol=1e-6, atol=0)


def test_sum_has_the_papers_gradient():
    x_hat, x = _pair()
    (g_sum,) = torch.autograd.grad(rec_term(x_hat, x, "sum"), x_hat)
    (g_ref,) = torch.autograd.grad(l1(x_hat, x), x_hat)
    torch.testing.assert_close(g_sum.float(), g_ref.float(), rtol=1e-5, atol=1e-9)


def test_log_has_the_gradient_of_the_mean_log_error():
    """grad = mean(e) * grad(mean_i log e_i), with e_i the image's Charbonnier sum."""
    x_hat, x = _pair()
    (g_log,) = torch.autograd.grad(rec_term(x_hat, x, "log"), x_hat)
    d = x_hat - x
    e = torch.sqrt(d * d + 1e-6).sum(dim=(1, 2, 3))
    ref = e.detach().mean() * torch.log(e).mean()
    (g_ref,) = torch.autograd.grad(ref, x_hat)
    torch.testing.assert_close(g_log, g_ref, rtol=1e-5, atol=1e-9)
    # and so, per image, the papers' gradient times mean(e) / e_i: the low-error images pull harder
    (g_sum,) = torch.autograd.grad(rec_term(x_hat, x, "sum"), x_hat)
    ratio = (g_log.flatten(1).norm(dim=1) / g_sum.flatten(1).norm(dim=1)).detach()
    torch.testing.assert_close(ratio, (e.mean() / e).detach(), rtol=1e-5, atol=0)
    assert ratio[0] > 1 > ratio[-1]


def test_an_unknown_weighting_is_refused():
    x_hat, x = _pair()
    with pytest.raises(ValueError, match="rec_weighting must be one of sum, log"):
        rec_term(x_hat, x, "mean")
    with pytest.raises(ValueError, match="rec_weighting must be one of sum, log"):
        Objective(torch.nn.Identity(), rec_weighting="mean")  # type: ignore[arg-type]


def test_the_config_checks_the_weighting(tmp_path: Path):
    cfg = load_config(None, ["loss.rec_weighting=log"])
    assert cfg.loss.rec_weighting == "log"
    assert load_config(None).loss.rec_weighting == "sum"
    with pytest.raises(ConfigError, match="loss.rec_weighting must be one of sum, log, got 'geometric'"):
        load_config(None, ["loss.rec_weighting=geometric"])


def test_the_log_config_differs_from_the_uniform_quality_run_only_in_the_weighting():
    log = load_config(resolve_config("sain_x2_jpeg_qf_log_cpu")).to_dict()
    base = load_config(resolve_config("sain_x2_jpeg_qf_cpu")).to_dict()
    assert log["loss"].pop("rec_weighting") == "log" and base["loss"].pop("rec_weighting") == "sum"
    log["run"].pop("out"), base["run"].pop("out")
    assert log == base


def test_sain_train_uses_the_configured_weighting(tmp_path: Path, monkeypatch):
    """`sain train` hands the config's weighting to the objective it trains with; the first
    step's loss is the same value under both (only the gradient differs)."""
    rows = train_with_each(tmp_path, monkeypatch, "rec_weighting", REC_WEIGHTINGS, "rec")
    assert rows["sum"][0]["loss"] == pytest.approx(rows["log"][0]["loss"], rel=1e-5)
