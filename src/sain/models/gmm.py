"""Learnable Gaussian mixture for the information lost by downscaling (SAIN's z).

One mixture of K components shared by every latent element. ``gmm_para`` is a (3, K)
parameter whose rows are the mixture logits, the means and the log-variances
(initialised ~1e-4 N(0, 1), as the reference). Sampling is reparameterised: each
element picks a component with a hard Gumbel-softmax over the logits (straight-through
gradient to the logits) and takes ``mu_k + sigma_k * eps`` with
``sigma = exp(0.5 * clamp(logvar, -20, 20))``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def pick_components(u: Tensor, logits: Tensor) -> Tensor:
    """The hard Gumbel-softmax choice ``argmax_k(logits_k + g_k)``, ``g = -log(-log u)``
    (``u``: (n, K) uniforms), without the softmax and with one logarithm per draw:
    ``-log`` is decreasing, so ``argmax_k(l_k - log e_k) = argmin_k(e_k * exp(-l_k))`` with
    ``e = -log u`` (both clamped as in :meth:`GaussianMixture.sample`). The same component
    as the softmax form except for exact ties of float rounding."""
    e = torch.log(u.clamp_min_(1e-20)).neg_().clamp_min_(1e-20)
    w = torch.exp(-logits.float())
    best = e[:, 0] * w[0]
    idx = torch.zeros(e.shape[0], dtype=torch.long)
    for k in range(1, e.shape[1]):  # a running minimum over K columns: no reduction over a tiny last dim
        key = e[:, k] * w[k]
        better = key < best
        best = torch.where(better, key, best)
        idx.masked_fill_(better, k)
    return idx


class _MixtureSample(torch.autograd.Function):
    """``mu_k + sigma_k * eps`` with ``k`` the hard Gumbel-softmax choice, and the
    straight-through gradient of the one-hot formulation (:meth:`GaussianMixture.sample_reference`)
    written by hand: the same values and gradients, without its ``(n, K)`` softmax, one-hot and
    matrix products (a softmax over a last dimension of 5 is slow on the CPU: 28 ms of a training
    step's 83k-element latent, 1 thread, against about 5 ms here).

    With ``t = logits + g`` and ``soft = softmax(t)`` per element, the one-hot ``hard - soft + soft``
    has the value of ``hard`` and the gradient of ``soft``, so for ``z = onehot . (mu + sigma eps)``::

        dz/dlogits_k = soft_k (a_k - sum_j soft_j a_j),  a_k = mu_k + sigma_k eps
        dz/dmu_k = hard_k                                 dz/dsigma_k = hard_k eps

    The columns are laid out ``(K, n)``, so every reduction over the components runs along
    whole rows.
    """

    @staticmethod
    def forward(ctx, logits: Tensor, means: Tensor, sigmas: Tensor, u: Tensor, eps: Tensor) -> Tensor:
        # u: (n, K) uniforms (the draw order of the reference), eps: (n,) normals
        g = u.t().contiguous().clamp_min_(1e-20).log_().neg_().clamp_min_(1e-20).log_().neg_()  # (K, n) Gumbel
        t = g.add_(logits[:, None])
        best, idx = t[0].clone(), torch.zeros(t.shape[1], dtype=torch.long, device=t.device)
        for k in range(1, t.shape[0]):  # argmax over the rows, element-wise (argmax(0) is slow here)
            better = t[k] > best
            torch.maximum(best, t[k], out=best)
            idx.masked_fill_(better, k)
        soft = torch.softmax(t, 0)
        ctx.save_for_backward(soft, idx, eps, means, sigmas)
        return means[idx] + sigmas[idx] * eps

    @staticmethod
    def backward(ctx, grad: Tensor):
        soft, idx, eps, means, sigmas = ctx.saved_tensors
        k = soft.shape[0]
        grad = grad.float()
        a = sigmas[:, None] * eps[None, :] + means[:, None]  # (K, n): dz/d onehot_k
        ga = a.mul_(grad[None, :])
        inner = (soft * ga).sum(0, keepdim=True)
        g_logits = ga.sub_(inner).mul_(soft).sum(1)
        g_means = torch.bincount(idx, weights=grad, minlength=k).to(means.dtype)
        g_sigmas = torch.bincount(idx, weights=grad * eps, minlength=k).to(sigmas.dtype)
        return g_logits, g_means, g_sigmas, None, None


class GaussianMixture(nn.Module):
    def __init__(self, components: int = 5):
        super().__init__()
        if components < 1:
            raise ValueError("components must be >= 1")
        self.components = components
        self.gmm_para = nn.Parameter(1e-4 * torch.randn(3, components))

    @property
    def logits(self) -> Tensor:
        return self.gmm_para[0]

    @property
    def means(self) -> Tensor:
        return self.gmm_para[1]

    @property
    def sigmas(self) -> Tensor:
        return torch.exp(0.5 * self.gmm_para[2].clamp(-20, 20))

    def _draws(self, shape, generator: torch.Generator | None, gdev: torch.device, device) -> tuple[Tensor, Tensor]:
        """The random numbers of one sample, in their order: ``(n, K)`` uniforms for the
        component choice, then ``n`` normals; drawn on ``gdev``, moved to ``device``."""
        numel = math.prod(int(d) for d in shape)
        u = torch.rand(numel, self.components, generator=generator, device=gdev).to(device)
        eps = torch.randn(numel, generator=generator, device=gdev).to(device)
        return u, eps

    def sample(
        self,
        shape: tuple[int, ...] | torch.Size,
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | None = None,
    ) -> Tensor:
        """Draw a tensor of ``shape`` from the mixture (differentiable wrt ``gmm_para``).

        Random numbers are drawn in float32 on ``generator``'s device (CPU by default) so
        a seed gives the same sample on every device.
        """
        p = self.gmm_para
        device = device or p.device
        dtype = dtype or p.dtype
        gdev = generator.device if generator is not None else torch.device(device)
        if gdev.type == "cpu" and not (torch.is_grad_enabled() and p.requires_grad):
            # no gradient wanted: the same draws, by the fast sampler
            return self.sample_chunked(shape, generator).to(device=device, dtype=dtype)
        u, eps = self._draws(shape, generator, gdev, device)
        z = _MixtureSample.apply(self.logits.float(), self.means.float(), self.sigmas.float(), u, eps)
        return z.reshape(shape).to(dtype)

    def sample_reference(
        self,
        shape: tuple[int, ...] | torch.Size,
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | None = None,
    ) -> Tensor:
        """:meth:`sample` written as the reference does (softmax over the Gumbel-perturbed
        logits, one-hot ``hard - soft.detach() + soft``, matrix products): the same draws; the
        tests hold :meth:`sample`'s values and gradients to it."""
        p = self.gmm_para
        device = device or p.device
        dtype = dtype or p.dtype
        gdev = generator.device if generator is not None else torch.device(device)
        u, eps = self._draws(shape, generator, gdev, device)
        gumbel = -torch.log((-torch.log(u.clamp_min(1e-20))).clamp_min(1e-20))
        soft = torch.softmax(self.logits.float() + gumbel, dim=-1)
        hard = torch.zeros_like(soft).scatter_(1, soft.argmax(-1, keepdim=True), 1.0)
        onehot = hard - soft.detach() + soft
        mu = onehot @ self.means.float()
        sigma = onehot @ self.sigmas.float()
        return (mu + sigma * eps.float()).reshape(shape).to(dtype)

    @torch.no_grad()
    def sample_chunked(
        self, shape: tuple[int, ...] | torch.Size, generator: torch.Generator | None = None, chunk: int = 1 << 20
    ) -> Tensor:
        """:meth:`sample` drawn ``chunk`` elements at a time, float32 on the CPU, no gradient.

        Same random stream as one :meth:`sample` call with the same CPU generator, without
        its per-element temporaries (about 25 floats per element) for the whole tensor at
        once, and faster (4.6x on a 7-million-element latent, 1 thread: :func:`pick_components`
        and a table lookup instead of the softmax and the one-hot products): equal to
        :meth:`sample` up to float rounding
        (a component chosen differently only at exact ties). ``chunk`` must be a multiple of 16.
        """
        if chunk < 16 or chunk % 16:
            raise ValueError(f"chunk must be a positive multiple of 16, got {chunk}")
        if generator is not None and generator.device.type != "cpu":
            raise ValueError("chunked sampling draws from a CPU generator")
        numel = 1
        for d in shape:
            numel *= int(d)
        k = self.components
        logits, means, sigmas = (t.detach().float().cpu() for t in (self.logits, self.means, self.sigmas))
        out = torch.empty(numel)
        sig = torch.empty(numel)
        # Same order of draws as sample(): all component uniforms, then all eps.
        for a in range(0, numel, chunk):
            b = min(a + chunk, numel)
            idx = pick_components(torch.rand(b - a, k, generator=generator), logits)
            torch.take(means, idx, out=out[a:b])
            torch.take(sigmas, idx, out=sig[a:b])
        # torch's CPU normal draws 16 values at a time with a special tail; chunks that are
        # multiples of 16 with the remainder in the last chunk reproduce one large draw, as
        # long as the last chunk has at least 16 values.
        bounds = list(range(0, numel, chunk)) + [numel]
        if len(bounds) > 2 and bounds[-1] - bounds[-2] < 16:
            del bounds[-2]
        for a, b in zip(bounds[:-1], bounds[1:]):
            eps = torch.randn(b - a, generator=generator)
            out[a:b] += sig[a:b] * eps
        return out.reshape(shape)
