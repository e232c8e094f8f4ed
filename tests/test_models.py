"""Tests of the networks and their building blocks (FrEIA / kornia style).

Per component: reference values, shapes, the invertibility contract
(``inverse(forward(x)) == x`` and ``logdet_fwd == -logdet_inv``), the analytic
log-determinant against a numerical ``log|det J|``, ``gradcheck`` in float64, and
exceptions on bad input. Everything runs on tiny float64 inputs on the CPU.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.autograd.functional import jacobian

import sain
from sain.models import IRN, SAIN, DenseBlock, EnhancedInvBlock, GaussianMixture, HaarDownsampling, InvBlock

DT = torch.float64


# -- helpers -----------------------------------------------------------------------
def randomize(module: torch.nn.Module, seed: int = 0, std: float = 0.05) -> torch.nn.Module:
    """Perturb every parameter so no subnet is the identity (fresh ones output zeros)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(std * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def rand(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=DT)


def numerical_logdet(fn, x: torch.Tensor) -> float:
    """log|det J| of ``fn`` at ``x`` (batch of one), from the full autograd Jacobian."""
    assert x.shape[0] == 1
    jac = jacobian(fn, x).reshape(x.numel(), x.numel())
    return torch.linalg.slogdet(jac).logabsdet.item()


def haar_reference(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Haar^k written out by hand: bands from the four 2x2 neighbours, band-major."""
    for _ in range(levels):
        a, b = x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2]
        c, d = x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2]
        x = torch.cat(((a + b + c + d) / 4, (a - b + c - d) / 4, (a + b - c - d) / 4, (a - b - c + d) / 4), 1)
    return x


# network configurations small enough for float64 round trips: (factory, HR size)
NETWORKS = {
    "sain_x2": (lambda: SAIN(2), 8),
    "sain_x4": (lambda: SAIN(4, e_blocks=2, v_blocks=1), 16),
    "irn_x2": (lambda: IRN(2), 8),
    "irn_x4": (lambda: IRN(4, blocks_per_level=2), 16),
}


@pytest.fixture(scope="module", params=sorted(NETWORKS))
def net(request):
    factory, size = NETWORKS[request.param]
    model = randomize(factory().to(DT).eval(), seed=3)
    return model, size


# -- public API inventory ------------------------------------------------------------
def test_public_api_inventory():
    for name in ("SAIN", "IRN", "load_checkpoint", "save_weights"):
        assert name in sain.__all__, name
    for name in sain.__all__:
        assert hasattr(sain, name), f"sain.__all__ lists {name!r} but it is not importable"
    ns: dict = {}
    exec("from sain import *", ns)  # the star-import must work too
    for name in ("SAIN", "IRN", "load_checkpoint", "save_weights"):
        assert name in ns


# -- Haar ------------------------------------------------------------------------
class TestHaar:
    def test_known_values_band_major(self):
        x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[10.0, 20.0], [30.0, 40.0]]]], dtype=DT)
        out, _ = HaarDownsampling(2)(x)
        assert out.shape == (1, 8, 1, 1)
        # [band0 of c0, band0 of c1, band1 of c0, band1 of c1, ...]
        expected = torch.tensor([2.5, 25.0, -0.5, -5.0, -1.0, -10.0, 0.0, 0.0], dtype=DT)
        torch.testing.assert_close(out.flatten(), expected)

    def test_band0_is_block_mean_and_matches_hand_written(self):
        x = rand(2, 3, 8, 6)
        out, _ = HaarDownsampling(3)(x)
        assert out.shape == (2, 12, 4, 3)
        torch.testing.assert_close(out[:, :3], F.avg_pool2d(x, 2))
        torch.testing.assert_close(out, haar_reference(x, 1))

    def test_inverse_exact(self):
        x = rand(2, 3, 8, 8)
        haar = HaarDownsampling(3)
        y, _ = haar(x)
        back, _ = haar(y, rev=True)
        torch.testing.assert_close(back, x, atol=1e-14, rtol=0)

    def test_logdet_value(self):
        x = rand(2, 3, 4, 6)
        haar = HaarDownsampling(3)
        y, ld = haar(x)
        expected = x[0].numel() / 4 * math.log(1 / 16)
        assert ld.shape == (2,)
        torch.testing.assert_close(ld, torch.full((2,), expected, dtype=DT))
        _, ld_inv = haar(y, rev=True)
        torch.testing.assert_close(ld_inv, -ld)

    def test_logdet_matches_numerical(self):
        haar = HaarDownsampling(3)
        x = rand(1, 3, 4, 4)
        _, ld = haar(x)
        assert ld.item() == pytest.approx(numerical_logdet(lambda t: haar(t)[0], x), abs=1e-9)

    def test_filters_are_non_persistent_buffer(self):
        haar = HaarDownsampling(3)
        assert list(haar.parameters()) == []
        assert len(haar.state_dict()) == 0
        assert len(list(haar.buffers())) == 1
        model = SAIN(2, e_blocks=1, v_blocks=0)
        assert not any("haar" in k for k, _ in model.named_parameters())
        assert not any("haar" in k for k in model.state_dict())

    def test_gradcheck(self):
        haar = HaarDownsampling(2)
        x = rand(1, 2, 4, 4).requires_grad_()
        assert torch.autograd.gradcheck(lambda t: haar(t)[0], (x,))
        y = rand(1, 8, 2, 2).requires_grad_()
        assert torch.autograd.gradcheck(lambda t: haar(t, rev=True)[0], (y,))

    def test_bad_input(self):
        haar = HaarDownsampling(3)
        with pytest.raises(ValueError):
            haar(rand(1, 3, 5, 4))
        with pytest.raises(ValueError):
            haar(rand(1, 4, 4, 4))
        with pytest.raises(ValueError):
            haar(rand(1, 3, 4, 4), rev=True)


# -- subnet ------------------------------------------------------------------------
class TestDenseBlock:
    def test_shape_and_zero_init(self):
        block = DenseBlock(9, 3)
        x = torch.randn(2, 9, 5, 7)
        out = block(x)
        assert out.shape == (2, 3, 5, 7)
        assert torch.count_nonzero(out) == 0
        assert torch.count_nonzero(block.conv5.weight) == 0
        for conv in (block.conv1, block.conv2, block.conv3, block.conv4):
            assert torch.count_nonzero(conv.weight) > 0

    def test_parameter_names_match_reference(self):
        names = {k for k, _ in DenseBlock(3, 9).named_parameters()}
        assert names == {f"conv{i}.{t}" for i in range(1, 6) for t in ("weight", "bias")}

    def test_gradcheck(self):
        block = randomize(DenseBlock(3, 2, growth=4).to(DT))
        x = rand(1, 3, 3, 3).requires_grad_()
        assert torch.autograd.gradcheck(block, (x,))


# -- couplings ------------------------------------------------------------------------
def _out(res):
    return res[0]


def _ld(res):
    return res[-1]


BLOCKS = {"vanilla": InvBlock, "enhanced": EnhancedInvBlock}


@pytest.fixture(params=sorted(BLOCKS))
def block(request):
    return randomize(BLOCKS[request.param](12).to(DT), seed=5, std=0.05)


class TestCouplings:
    def test_fresh_block_is_identity(self):
        x = rand(2, 12, 3, 3)
        for cls in BLOCKS.values():
            res = cls(12).to(DT)(x)
            torch.testing.assert_close(_out(res), x, atol=0, rtol=0)
            torch.testing.assert_close(_ld(res), torch.zeros(2, dtype=DT), atol=0, rtol=0)

    def test_randomized_is_not_identity(self, block):
        x = rand(2, 12, 3, 3)
        res = block(x)
        assert (_out(res) - x)[:, :3].abs().max() > 1e-3
        assert (_out(res) - x)[:, 3:].abs().max() > 1e-3
        assert _ld(res).abs().min() > 1e-3

    def test_round_trip_and_logdet(self, block):
        x = rand(2, 12, 4, 4)
        fwd = block(x)
        inv = block(_out(fwd), rev=True)
        assert (_out(inv) - x).abs().max() < 1e-10
        assert _ld(fwd).shape == (2,)
        torch.testing.assert_close(_ld(fwd), -_ld(inv), atol=1e-10, rtol=0)

    def test_inverse_then_forward(self, block):
        y = rand(1, 12, 3, 3) - 0.5
        x = _out(block(y, rev=True))
        assert (_out(block(x)) - y).abs().max() < 1e-10

    def test_logdet_matches_numerical(self, block):
        x = rand(1, 12, 2, 2, seed=7)
        ld = _ld(block(x)).item()
        assert ld == pytest.approx(numerical_logdet(lambda t: _out(block(t)), x), abs=1e-8)
        y = _out(block(x))
        ld_inv = _ld(block(y, rev=True)).item()
        assert ld_inv == pytest.approx(numerical_logdet(lambda t: _out(block(t, rev=True)), y), abs=1e-8)

    def test_gradcheck(self, block):
        x = rand(1, 12, 2, 2).requires_grad_()
        assert torch.autograd.gradcheck(lambda t: block(t), (x,))
        assert torch.autograd.gradcheck(lambda t: block(t, rev=True), (x,))

    def test_enhanced_lr_forward_equals_inverse(self):
        blk = randomize(EnhancedInvBlock(12).to(DT), seed=11)
        x = rand(2, 12, 3, 3)
        y, lr_f, _ = blk(x)
        back, lr_i, _ = blk(y, rev=True)
        assert lr_f.shape == (2, 3, 3, 3)
        assert (lr_i - lr_f).abs().max() < 1e-10
        # the LR is x1 + E(x2), not the passed-through y1
        torch.testing.assert_close(lr_f, x[:, :3] + blk.E(x[:, 3:]))
        assert (lr_f - y[:, :3]).abs().max() > 1e-3

    def test_vanilla_equations(self):
        blk = randomize(InvBlock(12).to(DT), seed=13)
        x = rand(1, 12, 3, 3)
        y, ld = blk(x)
        x1, x2 = x[:, :3], x[:, 3:]
        y1 = x1 + blk.F(x2)
        s = 2 * torch.sigmoid(blk.H(y1)) - 1
        torch.testing.assert_close(y, torch.cat((y1, x2 * torch.exp(s) + blk.G(y1)), 1))
        torch.testing.assert_close(ld, s.sum().reshape(1))

    def test_bad_input(self):
        with pytest.raises(ValueError):
            InvBlock(12)(torch.zeros(1, 11, 2, 2))
        with pytest.raises(ValueError):
            EnhancedInvBlock(12)(torch.zeros(12, 2, 2))
        with pytest.raises(ValueError):
            InvBlock(3)


# -- whole networks --------------------------------------------------------------------
class TestNetworks:
    def test_round_trip_logdet_shapes(self, net):
        model, size = net
        s = model.scale
        x = rand(2, 3, size, size)
        y, lr, ld = model(x, return_logdet=True)
        assert y.shape == (2, 3 * s * s, size // s, size // s)
        assert lr.shape == (2, 3, size // s, size // s)
        back, lr_inv, ld_inv = model.inverse(y, return_logdet=True)
        assert back.shape == x.shape
        assert (back - x).abs().max() < 1e-10
        assert ld.shape == ld_inv.shape == (2,)
        torch.testing.assert_close(ld, -ld_inv, atol=1e-10, rtol=0)
        assert (lr_inv - lr).abs().max() < 1e-10
        # two calls without logdet agree with the logdet ones
        y2, lr2 = model(x)
        torch.testing.assert_close(y2, y, atol=0, rtol=0)
        torch.testing.assert_close(lr2, lr, atol=0, rtol=0)

    def test_lr_is_not_plain_passthrough_for_sain(self, net):
        model, size = net
        x = rand(1, 3, size, size)
        y, lr = model(x)
        if isinstance(model, SAIN):
            assert (lr - y[:, :3]).abs().max() > 1e-3  # the E-block LR, not y_sim
        else:
            torch.testing.assert_close(lr, y[:, :3], atol=0, rtol=0)

    def test_downscale_upscale_shapes(self, net):
        model, size = net
        x = rand(2, 3, size, size)
        lr = model.downscale(x)
        assert lr.shape == (2, 3, size // model.scale, size // model.scale)
        torch.testing.assert_close(lr, model(x)[1], atol=0, rtol=0)
        hr = model.upscale(lr, torch.Generator().manual_seed(0))
        assert hr.shape == x.shape and hr.dtype == DT
        # upscale == inverse(cat(lr, sample_latent)) for the same seed
        z = model.sample_latent(lr, torch.Generator().manual_seed(0))
        torch.testing.assert_close(hr, model.inverse(torch.cat((lr, z), 1))[0], atol=0, rtol=0)

    def test_sample_latent_shape_and_determinism(self, net):
        model, _ = net
        s = model.scale
        lr = rand(2, 3, 5, 3)
        z1 = model.sample_latent(lr, torch.Generator().manual_seed(123))
        z2 = model.sample_latent(lr, torch.Generator().manual_seed(123))
        z3 = model.sample_latent(lr, torch.Generator().manual_seed(124))
        assert z1.shape == (2, 3 * (s * s - 1), 5, 3)
        assert z1.dtype == lr.dtype
        torch.testing.assert_close(z1, z2, atol=0, rtol=0)
        assert not torch.equal(z1, z3)

    def test_logdet_matches_numerical(self):
        for model in (SAIN(2, e_blocks=1, v_blocks=1), IRN(2, blocks_per_level=2)):
            model = randomize(model.to(DT), seed=17)
            x = rand(1, 3, 4, 4)
            ld = model(x, return_logdet=True)[2].item()
            assert ld == pytest.approx(numerical_logdet(lambda t, m=model: m(t)[0], x), abs=1e-8)

    def test_gradcheck(self):
        model = randomize(SAIN(2, e_blocks=1, v_blocks=1).to(DT), seed=19)
        x = rand(1, 3, 2, 2).requires_grad_()
        assert torch.autograd.gradcheck(lambda t: model(t), (x,))
        y = rand(1, 12, 1, 1).requires_grad_()
        assert torch.autograd.gradcheck(lambda t: model.inverse(t), (y,))

    @pytest.mark.parametrize("name", sorted(NETWORKS))
    def test_fresh_model_is_haar(self, name):
        factory, size = NETWORKS[name]
        model = factory().to(DT)
        x = rand(2, 3, size, size)
        y, lr, ld = model(x, return_logdet=True)
        expected = haar_reference(x, model.levels)
        torch.testing.assert_close(y, expected, atol=1e-14, rtol=0)
        torch.testing.assert_close(lr, expected[:, :3], atol=1e-14, rtol=0)
        # only the Haar steps contribute: sum over levels of (numel/4) log(1/16)
        numel = x[0].numel()
        torch.testing.assert_close(ld, torch.full((2,), model.levels * numel / 4 * math.log(1 / 16), dtype=DT))

    @pytest.mark.parametrize("scale,expected", [(2, 2_015_437), (4, 6_493_763)])
    def test_sain_parameter_count(self, scale, expected):
        model = SAIN(scale)
        assert sum(p.numel() for p in model.parameters() if p.requires_grad) == expected
        assert (model.e_blocks, model.v_blocks) == {2: (5, 3), 4: (10, 6)}[scale]

    @pytest.mark.parametrize("scale,expected", [(2, 1_667_952), (4, 4_355_136)])
    def test_irn_parameter_count(self, scale, expected):
        model = IRN(scale)
        assert sum(p.numel() for p in model.parameters() if p.requires_grad) == expected

    @pytest.mark.parametrize("cls", [SAIN, IRN])
    def test_config_rebuilds(self, cls):
        model = cls(4) if cls is IRN else cls(4, e_blocks=2, v_blocks=1)
        clone = cls(**model.config())
        assert clone.config() == model.config()
        assert {k: v.shape for k, v in clone.state_dict().items()} == {
            k: v.shape for k, v in model.state_dict().items()
        }

    @pytest.mark.parametrize(
        "make", [lambda: SAIN(2, e_blocks=1, v_blocks=1), lambda: IRN(2, blocks_per_level=1)], ids=["sain", "irn"]
    )
    def test_errors(self, make):
        model = make()
        with pytest.raises(ValueError):
            model(torch.zeros(3, 8, 8))  # 3-D
        with pytest.raises(ValueError):
            model(torch.zeros(1, 4, 8, 8))  # RGBA
        with pytest.raises(ValueError):
            model(torch.zeros(1, 3, 7, 8))  # not a multiple of the scale
        with pytest.raises(ValueError):
            model(torch.zeros(1, 3, 8, 9))
        with pytest.raises(ValueError):
            model.inverse(torch.zeros(1, 11, 4, 4))  # wrong channel count
        with pytest.raises(ValueError):
            model.inverse(torch.zeros(12, 4, 4))
        with pytest.raises(ValueError):
            model.upscale(torch.zeros(1, 4, 4, 4))
        with pytest.raises(ValueError):
            type(model)(scale=3)
        with pytest.raises(ValueError):
            type(model)(3)


# -- Gaussian mixture --------------------------------------------------------------
class TestGaussianMixture:
    def test_init(self):
        gmm = GaussianMixture(5)
        assert gmm.gmm_para.shape == (3, 5)
        assert gmm.gmm_para.requires_grad
        assert gmm.gmm_para.abs().max() < 1e-2
        with pytest.raises(ValueError):
            GaussianMixture(0)

    def test_statistics_of_a_hand_set_mixture(self):
        gmm = GaussianMixture(3)
        with torch.no_grad():
            gmm.gmm_para.copy_(
                torch.tensor(
                    [
                        [10.0, -10.0, -10.0],  # logits: component 0
                        [2.0, -5.0, 7.0],  # means
                        [math.log(0.25), 0.0, 0.0],
                    ]
                )
            )  # log-variances
        z = gmm.sample((4, 3, 50, 50), generator=torch.Generator().manual_seed(0))
        assert z.shape == (4, 3, 50, 50)
        assert z.mean().item() == pytest.approx(2.0, abs=0.02)
        assert z.std().item() == pytest.approx(0.5, abs=0.02)

    def test_fresh_sample_is_finite_and_near_standard_normal(self):
        z = GaussianMixture(5).sample((20000,), generator=torch.Generator().manual_seed(0))
        assert torch.isfinite(z).all()
        assert z.mean().item() == pytest.approx(0.0, abs=0.03)
        assert z.std().item() == pytest.approx(1.0, abs=0.03)

    def test_statistics_of_a_two_component_mixture(self):
        gmm = GaussianMixture(2)
        with torch.no_grad():  # weights 1/4, 3/4
            gmm.gmm_para.copy_(torch.tensor([[0.0, math.log(3.0)], [-3.0, 3.0], [math.log(0.01)] * 2]))
        z = gmm.sample((20000,), generator=torch.Generator().manual_seed(1))
        assert (z > 0).float().mean().item() == pytest.approx(0.75, abs=0.02)
        assert z[z > 0].mean().item() == pytest.approx(3.0, abs=0.01)
        assert z[z > 0].std().item() == pytest.approx(0.1, abs=0.01)

    def test_gradient_reaches_every_row(self):
        gmm = GaussianMixture(5)
        with torch.no_grad():
            gmm.gmm_para.copy_(torch.randn(3, 5, generator=torch.Generator().manual_seed(2)))
        z = gmm.sample((2, 9, 8, 8), generator=torch.Generator().manual_seed(3))
        loss = (z - 1.0).pow(2).mean()
        loss.backward()
        grad = gmm.gmm_para.grad
        assert grad is not None
        for row in range(3):
            assert grad[row].abs().sum() > 0, f"no gradient to gmm_para row {row}"

    def test_sain_latent_through_gmm(self):
        model = SAIN(2, e_blocks=1, v_blocks=0)
        with torch.no_grad():
            model.gmm.gmm_para.copy_(
                torch.tensor([[20.0, 0, 0, 0, 0], [-1.5, 0, 0, 0, 0], [-40.0, 0, 0, 0, 0]])
            )  # logvar clamped to -20
        z = model.sample_latent(torch.zeros(1, 3, 4, 4), torch.Generator().manual_seed(0))
        assert z.shape == (1, 9, 4, 4)
        torch.testing.assert_close(z, torch.full_like(z, -1.5), atol=1e-3, rtol=0)

    def test_fast_sampler_draws_what_the_differentiable_one_draws(self):
        from sain.models.gmm import pick_components

        gmm = GaussianMixture(5)
        with torch.no_grad():
            gmm.gmm_para.copy_(torch.randn(3, 5, generator=torch.Generator().manual_seed(4)))
        shape = (2, 9, 37, 41)
        slow = gmm.sample(shape, generator=torch.Generator().manual_seed(7))  # with grad: softmax form
        assert slow.requires_grad
        with torch.no_grad():
            fast = gmm.sample(shape, generator=torch.Generator().manual_seed(7))  # no grad: pick + lookup
            chunked = gmm.sample_chunked(shape, torch.Generator().manual_seed(7), chunk=16 * 101)
        torch.testing.assert_close(fast, slow.detach(), atol=1e-6, rtol=0)
        torch.testing.assert_close(chunked, fast, atol=0, rtol=0)
        u = torch.rand(50000, 5, generator=torch.Generator().manual_seed(8))
        logits = gmm.logits.detach()
        gumbel = -torch.log((-torch.log(u.clamp_min(1e-20))).clamp_min(1e-20))
        assert torch.equal(pick_components(u.clone(), logits), (logits + gumbel).argmax(1))

    @pytest.mark.parametrize("k, seed", [(5, 0), (3, 1), (1, 2)])
    def test_training_sample_matches_the_reference_form(self, k: int, seed: int):
        """The hand-written straight-through sampler draws the reference's values and gives its
        gradients to every row of gmm_para (logits, means, log-variances, one clamped)."""
        gmm = GaussianMixture(k)
        with torch.no_grad():
            gmm.gmm_para.copy_(torch.randn(3, k, generator=torch.Generator().manual_seed(seed)))
            gmm.gmm_para[2, 0] = -25.0  # a clamped log-variance: no gradient there
        shape = (2, 9, 13, 11)
        weight = torch.randn(shape, generator=torch.Generator().manual_seed(seed + 10))
        grads, values = [], []
        for fn in (gmm.sample, gmm.sample_reference):
            gmm.gmm_para.grad = None
            z = fn(shape, generator=torch.Generator().manual_seed(seed + 20))
            (z * weight).sum().backward()
            values.append(z.detach())
            grads.append(gmm.gmm_para.grad.clone())
        torch.testing.assert_close(values[0], values[1], atol=1e-6, rtol=0)
        torch.testing.assert_close(grads[0], grads[1], atol=1e-3, rtol=1e-4)
        assert grads[0][2, 0] == 0
        assert grads[0][:, 1:].abs().sum() > 0 or k == 1

    def test_dtype(self):
        gmm = GaussianMixture(5)
        z = gmm.sample((2, 3), generator=torch.Generator().manual_seed(0), dtype=DT)
        assert z.dtype == DT


@pytest.mark.parametrize("c_in,c_out", [(9, 3), (3, 9), (45, 3)])
def test_dense_block_fused_equals_concatenating_form(c_in: int, c_out: int) -> None:
    """The concatenation-free forward is the same function as the reference formulation."""
    from sain.models.subnet import DenseBlock

    torch.manual_seed(0)
    block = DenseBlock(c_in, c_out).double()
    for p in block.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    x = torch.randn(2, c_in, 7, 9, dtype=torch.float64, requires_grad=True)
    fused = block.forward_fused(x)
    ref = block.forward_concat(x)
    assert torch.allclose(fused, ref, atol=1e-12)
    w = torch.randn_like(ref)  # a generic output gradient
    params = list(block.parameters())
    g1 = torch.autograd.grad((fused * w).sum(), [x, *params])
    g2 = torch.autograd.grad((ref * w).sum(), [x, *params])
    for (name, _), a, b in zip([("x", None), *block.named_parameters()], g1, g2):
        assert a.shape == b.shape, name
        assert torch.allclose(a, b, atol=1e-11), name


def test_dense_block_fused_backward_gradcheck() -> None:
    """The hand-written backward of the fused block against finite differences (float64)."""
    from sain.models.subnet import DenseBlock

    torch.manual_seed(1)
    block = DenseBlock(3, 2, growth=4).double()
    for p in block.parameters():
        p.data.add_(0.2 * torch.randn_like(p))
    x = torch.randn(2, 3, 5, 4, dtype=torch.float64, requires_grad=True)
    params = [p for p in block.parameters()]
    assert torch.autograd.gradcheck(lambda x, *ps: block.forward_fused(x), (x, *params))


@pytest.mark.parametrize("needs_x", [True, False])
def test_dense_block_fused_bf16_channels_last(needs_x: bool) -> None:
    """Under bf16 autocast and channels-last tensors the fused block matches nn.Conv2d's
    autocast computation (same dtype, layout and, within bf16 rounding, same values and
    gradients); an input that needs no gradient gets none."""
    from sain.models.subnet import DenseBlock

    torch.manual_seed(2)
    block = DenseBlock(9, 3)
    for p in block.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    block = block.to(memory_format=torch.channels_last)
    x0 = torch.randn(2, 9, 12, 10).contiguous(memory_format=torch.channels_last)
    outs, grads = [], []
    for fused in (True, False):
        x = x0.clone().requires_grad_(needs_x)
        block.fused = fused
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = block(x)
        assert y.dtype == torch.bfloat16
        assert y.is_contiguous(memory_format=torch.channels_last)
        block.zero_grad()
        y.float().pow(2).sum().backward()
        outs.append(y.float())
        grads.append([x.grad] + [p.grad.clone() for p in block.parameters()])
    block.fused = True
    torch.testing.assert_close(outs[0], outs[1], rtol=0.05, atol=0.05)
    if needs_x:
        assert grads[0][0].dtype == torch.float32
        torch.testing.assert_close(grads[0][0], grads[1][0], rtol=0.05, atol=0.1)
    else:
        assert grads[0][0] is None
    for a, b in zip(grads[0][1:], grads[1][1:]):
        assert a.dtype == torch.float32
        rel = (a - b).norm() / b.norm()
        assert rel < 0.03, float(rel)


def test_irn_x4_run_init_from_an_irn_x2():
    """``run.init = "irn-x2"`` for an irn-x4 config: the x2 levels become the first level and
    the new level starts as the identity, so the x4 LR is the 2x2 mean of the x2 LR."""
    from sain.errors import CheckpointError

    torch.manual_seed(0)
    x2 = IRN(2, blocks_per_level=1)
    with torch.no_grad():
        for p in x2.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    x4 = IRN.from_pretrained(x2, {"scale": 4, "blocks_per_level": 1}).eval()
    assert x4.config() == {"scale": 4, "blocks_per_level": 1}
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(x4(x)[1], F.avg_pool2d(x2(x)[1], 2), atol=1e-6)
        assert not torch.allclose(x4(x)[1], F.avg_pool2d(x, 4), atol=1e-3)  # the x2 level did run
    for a, b in zip(x4.operations[:2], x2.operations, strict=True):
        assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    with pytest.raises(CheckpointError, match="smaller scale and the same blocks_per_level"):
        IRN.from_pretrained(x2, {"scale": 4, "blocks_per_level": 2})
    with pytest.raises(CheckpointError, match="smaller scale"):
        IRN.from_pretrained(x4, {"scale": 2, "blocks_per_level": 1})
    same = IRN.from_pretrained(x2, x2.config())  # the default: the same configuration as it is
    assert all(torch.equal(p, q) for p, q in zip(same.state_dict().values(), x2.state_dict().values(), strict=True))
