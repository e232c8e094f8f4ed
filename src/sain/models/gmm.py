"""Learnable Gaussian mixture for the information lost by downscaling (SAIN's z).

One mixture of K components shared by every latent element. ``gmm_para`` is a (3, K)
parameter whose rows are the mixture logits, the means and the log-variances
(initialised ~1e-4 N(0, 1), as the reference). Sampling is reparameterised: each
element picks a component with a hard Gumbel-softmax over the logits (straight-through
gradient to the logits) and takes ``mu_k + sigma_k * eps`` with
``sigma = exp(0.5 * clamp(logvar, -20, 20))``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


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
        numel = 1
        for d in shape:
            numel *= int(d)
        gdev = generator.device if generator is not None else device
        u = torch.rand(numel, self.components, generator=generator, device=gdev).to(device)
        eps = torch.randn(numel, generator=generator, device=gdev).to(device)
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

        Same random stream and arithmetic as one :meth:`sample` call with the same CPU
        generator (bit-identical), without its per-element temporaries (about 25 floats per
        element) for the whole tensor at once. ``chunk`` must be a multiple of 16.
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
            u = torch.rand(b - a, k, generator=generator)
            gumbel = -torch.log((-torch.log(u.clamp_min(1e-20))).clamp_min(1e-20))
            soft = torch.softmax(logits + gumbel, dim=-1)
            hard = torch.zeros_like(soft).scatter_(1, soft.argmax(-1, keepdim=True), 1.0)
            onehot = hard - soft + soft
            out[a:b] = onehot @ means
            sig[a:b] = onehot @ sigmas
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
