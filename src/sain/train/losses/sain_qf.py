"""The training objective of SAIN-QF (:mod:`sain.models.sain_qf`): SAIN's five terms, each
sample at a JPEG quality of its own.

For a batch of HR patches ``x`` with ``LR_ref`` = bicubic(x), a quality ``q_i`` drawn per
sample uniformly from the integers of ``model.train_quality_range`` (default 20..95; or from
the mixture of ranges ``model.train_quality_mix``), Q =
8-bit rounding (straight-through), D = the differentiable JPEG and R = the real codec (no
gradient), both at each sample's ``q_i``::

    (y_sim, z), LR = forward(x, q)            # V-blocks at q; LR does not depend on q
    x_hat, LR_rec  = inverse(concat(D_q(Q(LR)), gmm_sample(z.shape)), q)
    fit1 = L2(LR, LR_ref)        fit2 = L2(y_sim, R_q(LR_ref))     rel = L2(y_sim, R_q(Q(LR)))
    reg  = L2(Q(LR), LR_rec)     rec  = L1(x_hat, x)
    loss = lambda_rec * rec + lambda_fit * (fit1 + fit2 + reg + rel) / 4

The terms, weights and L1 / L2 are :func:`sain.train.objective.sain_terms`'s. The real codec
runs per quality group (one :func:`~sain.codecs.codec_roundtrip` call per distinct ``q_i``)
in the objective's worker thread, for ``Q(LR)`` and ``LR_ref`` together, while the
differentiable JPEG and the inverse pass are computed. Registered with
``codec_targets=False``: the data pipeline's precomputed ``R(LR_ref)`` is at the config's
single quality, not at each sample's, so it is not used. The configuration's
``loss.quality`` therefore does not enter the loss (the trainer validates at it); the range
is the model's (``[model] train_quality_range``), so it travels in the weight file.

The qualities are drawn from torch's global generator (seeded by the trainer, so a resumed
run draws the same ones), or given as ``batch["quality"]`` ((N,) integers) to fix them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import Tensor

from ...codecs import codec_roundtrip, diff_jpeg
from ...models.sain_qf import SAINQF
from ..objective import Objective, five_terms, register_objective


def draw_qualities(
    n: int,
    quality_range: tuple[int, int],
    generator: torch.Generator | None = None,
    mix: Sequence[tuple[int, int, float]] | None = None,
) -> Tensor:
    """``n`` integer qualities drawn uniformly from ``lo..hi`` (inclusive), as an int64 (N,)
    tensor; with ``mix`` (``(lo, hi, weight)`` parts, :func:`~sain.models.sain_qf.check_quality_mix`)
    each sample first picks a part with probability proportional to its weight."""
    lo, hi = (int(v) for v in quality_range)
    if not 1 <= lo <= hi <= 100:
        raise ValueError(f"quality range must satisfy 1 <= lo <= hi <= 100, got {(lo, hi)}")
    if not mix:
        return torch.randint(lo, hi + 1, (n,), generator=generator)
    weights = torch.tensor([float(w) for _, _, w in mix], dtype=torch.float64)
    part = torch.multinomial(weights, n, replacement=True, generator=generator)
    los = torch.tensor([int(a) for a, _, _ in mix])[part]
    spans = torch.tensor([int(b) - int(a) + 1 for a, b, _ in mix])[part]
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    return los + torch.minimum((u * spans).long(), spans - 1)


def roundtrip_per_quality(x: Tensor, fmt: str, qualities: Tensor) -> Tensor:
    """The real codec on each image of ``x`` (N, 3, h, w) at its own quality (``qualities`` (N,)),
    one :func:`~sain.codecs.codec_roundtrip` per distinct quality; same shape, dtype, device."""
    q = qualities.detach().to("cpu", torch.int64)
    if q.shape != (x.shape[0],):
        raise ValueError(f"need one quality per image: {x.shape[0]} images, qualities {tuple(q.shape)}")
    out = torch.empty_like(x)
    for value in torch.unique(q).tolist():
        idx = (q == value).nonzero().flatten()
        out[idx.to(x.device)] = codec_roundtrip(x[idx.to(x.device)], fmt, int(value))[0]
    return out


def _real_targets(q_lr: Tensor, lr_ref: Tensor, fmt: str, qualities: Tensor) -> tuple[Tensor, Tensor]:
    return roundtrip_per_quality(q_lr, fmt, qualities), roundtrip_per_quality(lr_ref, fmt, qualities)


@register_objective("sain-qf", codec_targets=False, codec_worker=True)
def sain_qf_terms(obj: Objective, batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """SAIN's five terms at per-sample qualities (module docstring).

    ``obj.model`` is a :class:`~sain.models.sain_qf.SAINQF`; ``batch`` has ``hr`` (N, 3, H, W)
    and ``lr_ref`` (N, 3, H/s, W/s) in [0, 1], optionally ``quality`` (N,). Returns ``fit1``,
    ``fit2``, ``rel``, ``reg``, ``rec`` and ``loss`` (float32 scalars).
    """
    model = cast(SAINQF, obj.model)
    x, lr_ref = batch["hr"], batch["lr_ref"]
    dev = x.device
    qualities = batch.get("quality")
    if qualities is None:
        qualities = draw_qualities(x.shape[0], model.train_quality_range, mix=model.train_quality_mix)
    qualities = model.qualities(qualities, x.shape[0], dev)
    with obj.autocast(dev):
        y, lr = model(obj.fmt(x), quality=qualities)
    y, lr = y.float(), lr.float()
    q = obj.quantize(lr)
    q_cpu = q.detach().to("cpu", torch.float32)
    ref_cpu = lr_ref.detach().to("cpu", torch.float32)
    job = obj._pool.submit(_real_targets, q_cpu, ref_cpu, obj.codec, qualities) if obj._pool else None
    d = diff_jpeg(q, qualities)
    y_sim, _ = model.split_output(y)
    z = model.sample_latent(d)
    with obj.autocast(dev):
        x_hat, lr_rec = model.inverse(obj.fmt(torch.cat((d, z), 1)), quality=qualities)
    r_q, r_ref = job.result() if job else _real_targets(q_cpu, ref_cpu, obj.codec, qualities)
    return five_terms(obj, x, x_hat, lr, lr_ref, q, lr_rec, y_sim, r_ref, r_q)
