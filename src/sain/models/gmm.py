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

    def sample(self, shape: tuple[int, ...] | torch.Size, generator: torch.Generator | None = None,
               dtype: torch.dtype | None = None, device: torch.device | None = None) -> Tensor:
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
