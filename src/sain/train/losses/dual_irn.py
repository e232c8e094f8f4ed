"""The training objective of the Dual-IRN baseline (the paper's asymmetric
baseline, as the project builds it): IRN's recipe on each of the two IRNs, U-IRN's LR fit aimed at the
compressed LR, and U-IRN's restoration fed through the differentiable JPEG so that its
gradients reach D-IRN's LR.

For a batch of HR patches ``x`` with ``LR_ref`` = bicubic(x), Q = 8-bit rounding
(straight-through), DiffJPEG = the differentiable JPEG and R = the real codec (no
gradient), both at the configured quality::

    (y_D, LR_D) = D(x);   z_D = y_D[:, 3:]
    C           = DiffJPEG(Q(LR_D))                  # carries gradients into D
    (y_U, z_U)  = U(x)                               # y_U = the first 3 channels
    x_hat       = U^-1(concat(C, N(0, I)))

    fit       = L2(LR_D, LR_ref)                     # D: the sent LR looks like bicubic
    latent_d  = sum(z_D^2) / N                       # D: IRN's latent term
    comp      = L2(y_U, R(Q(LR_D)))                  # U: imitates the real codec's output...
    sim       = L2(y_U, C)                           # ...and the differentiable one's
    latent_u  = sum(z_U^2) / N                       # U: IRN's latent term
    rec       = L1(x_hat, x)                         # U^-1 restores the HR (gradients into D via C)

    loss = lambda_rec * rec + lambda_fit * (fit + (comp + sim) / 2)
           + lambda_latent * (latent_d + latent_u)

Weights: IRN's recipe on each branch (Xiao et al., ECCV 2020:
``4 * L2(LR, LR_ref) + 1 * sum(z^2)/N + 1 * L1(...)``; x4: 16), with SAIN's weights for
rec (1) and the fits (``lambda_fit``, 4 at x2) as a starting point; U-IRN's one
LR fit is split evenly over its two compressed targets. L2 / L1 as in
:mod:`sain.train.objective`. The networks run under the configured autocast; the losses
and codecs in float32. The real codec runs in a worker thread while U-IRN's passes are
computed.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ...codecs import codec_roundtrip, diff_jpeg
from ...models import IRN
from ..objective import Objective, l2, register_objective


@register_objective("dual-irn", codec_worker=True)
def dual_irn_terms(obj: Objective, batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """Dual-IRN's six terms and their weighted sum (module docstring).

    ``obj.model`` is a :class:`~sain.models.dual_irn.DualIRN`; ``batch`` has ``hr``
    (N, 3, H, W) and ``lr_ref`` (N, 3, H/s, W/s) in [0, 1]. Returns ``fit``, ``latent_d``,
    ``comp``, ``sim``, ``latent_u``, ``rec`` and ``loss`` (float32 scalars).
    """
    model = obj.model
    d_irn: IRN = model.d_irn  # type: ignore[assignment]
    u_irn: IRN = model.u_irn  # type: ignore[assignment]
    x, lr_ref = batch["hr"], batch["lr_ref"]
    dev = x.device
    xf = obj.fmt(x)
    with obj.autocast(dev):
        y_d, lr_d = d_irn(xf)
    y_d, lr_d = y_d.float(), lr_d.float()
    z_d = d_irn.split_output(y_d)[1]
    q = obj.quantize(lr_d)
    q_cpu = q.detach().to("cpu", torch.float32)
    job = obj._pool.submit(codec_roundtrip, q_cpu, obj.codec, obj.quality) if obj._pool else None
    c = diff_jpeg(q, obj.quality)
    with obj.autocast(dev):
        y_u, _ = u_irn(xf)
    y_u_lr, z_u = u_irn.split_output(y_u.float())
    noise = u_irn.sample_latent(c)
    with obj.autocast(dev):
        x_hat, _ = u_irn.inverse(obj.fmt(torch.cat((c, noise), 1)))
    r_q = job.result()[0] if job else codec_roundtrip(q_cpu, obj.codec, obj.quality)[0]
    terms = {
        "fit": l2(lr_d, lr_ref),
        "latent_d": z_d.float().pow(2).sum() / z_d.shape[0],
        "comp": l2(y_u_lr, r_q.to(dev)),
        "sim": l2(y_u_lr, c),
        "latent_u": z_u.float().pow(2).sum() / z_u.shape[0],
        "rec": obj.rec(x_hat, x),
    }
    terms["loss"] = (
        obj.lambda_rec * terms["rec"]
        + obj.lambda_fit * (terms["fit"] + (terms["comp"] + terms["sim"]) / 2)
        + obj.lambda_latent * (terms["latent_d"] + terms["latent_u"])
    )
    return terms
