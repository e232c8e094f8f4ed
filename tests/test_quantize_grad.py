"""The gradient of the 8-bit rounding Q in training (``[loss] quantize_grad``).

"identity" (the papers, IRN's ``Quantization``) passes the gradient through the clamp too;
"clamp" keeps the rounding straight-through but gives the clamp its own gradient: zero
where the LR leaves [0, 1]. The forward values are the same 8-bit levels under both.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from _tiny_train import train_with_each
from sain.codecs import quantize, quantize_u8, to_levels
from sain.train import ConfigError, load_config
from sain.train.objective import QUANTIZE_GRADS, Objective


def _lr() -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    return (torch.rand(2, 3, 16, 16, generator=g) * 1.6 - 0.3).requires_grad_(True)  # ~35 % outside [0, 1]


@pytest.mark.parametrize("clamp_grad", [False, True])
def test_the_forward_values_are_the_8_bit_levels(clamp_grad):
    x = _lr()
    q = quantize(x, clamp_grad=clamp_grad)
    assert torch.equal(q, quantize_u8(x.detach()))


def test_clamp_grad_is_zero_exactly_where_the_forward_clamped():
    x = _lr()
    w = torch.randn(x.shape, generator=torch.Generator().manual_seed(4))
    (g_clamp,) = torch.autograd.grad((quantize(x, clamp_grad=True) * w).sum(), x)
    (g_id,) = torch.autograd.grad((quantize(x) * w).sum(), x)
    inside = (x >= 0) & (x <= 1)
    assert 0.2 < (~inside).float().mean() < 0.5  # the test exercises both cases
    assert torch.equal(g_id, w)  # the papers' rule: identity everywhere
    assert torch.equal(g_clamp[inside], w[inside])
    assert torch.count_nonzero(g_clamp[~inside]) == 0
    # the same as differentiating clamp() with the rounding alone straight-through
    x2 = x.detach().clone().requires_grad_(True)
    c = x2.clamp(0, 1)
    ref = c + (torch.round(c * 255) / 255 - c).detach()
    (g_ref,) = torch.autograd.grad((ref * w).sum(), x2)
    torch.testing.assert_close(g_clamp, g_ref, rtol=0, atol=0)


def test_the_objective_and_the_config_check_the_rule():
    assert QUANTIZE_GRADS == ("identity", "clamp")
    with pytest.raises(ValueError, match="quantize_grad must be one of identity, clamp, got 'zero'"):
        Objective(torch.nn.Identity(), quantize_grad="zero")  # type: ignore[arg-type]
    assert load_config(None).loss.quantize_grad == "identity"
    assert load_config(None, ["loss.quantize_grad=clamp"]).loss.quantize_grad == "clamp"
    with pytest.raises(ConfigError, match="loss.quantize_grad must be one of identity, clamp, got 'ste'"):
        load_config(None, ["loss.quantize_grad=ste"])


def test_sain_train_uses_the_configured_rule(tmp_path: Path, monkeypatch):
    """`sain train` hands the config's rule to the objective; the first step's loss is the
    same under both (only the gradient differs)."""
    rows = train_with_each(tmp_path, monkeypatch, "quantize_grad", QUANTIZE_GRADS, "quantize")
    assert rows["identity"][0]["loss"] == pytest.approx(rows["clamp"][0]["loss"], rel=1e-6)


def test_inference_rounding_is_the_formula_and_leaves_its_input_alone():
    # to_levels / quantize_u8 compute in place on one new tensor (a photo's is ~150 MB); the
    # values must stay round(clamp(x, 0, 1) * 255) (halves to even) and x unchanged
    halves = (torch.arange(0, 256, dtype=torch.float32) + 0.5) / 255  # exactly between two levels
    x = torch.cat([_lr().detach().flatten(), halves, torch.tensor([-1.0, 0.0, 1.0, 2.0, float("inf")])])
    before = x.clone()
    assert torch.equal(to_levels(x), torch.round(torch.clamp(x, 0, 1) * 255))
    assert torch.equal(quantize_u8(x), torch.round(torch.clamp(x, 0, 1) * 255) / 255)
    assert torch.equal(x, before)
    assert to_levels(x).dtype == x.dtype and quantize_u8(x.double()).dtype == torch.float64
