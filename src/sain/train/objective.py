"""The training objectives of SAIN and of the IRN baseline (SAIN_SPEC section 4).

SAIN, for a batch of HR patches ``x`` with ``LR_ref`` = bicubic(x)::

    (y_sim, z), LR = forward(x)
    x_hat, LR_rec  = inverse(concat(D(Q(LR)), gmm_sample(z.shape)))
    fit1 = L2(LR, LR_ref)        fit2 = L2(y_sim, R(LR_ref))     rel = L2(y_sim, R(Q(LR)))
    reg  = L2(Q(LR), LR_rec)     rec  = L1(x_hat, x)
    loss = rec + lambda_fit * (fit1 + fit2 + reg + rel) / 4      (lambda_fit 4 at x2, 16 at x4)

IRN::

    loss = lambda_fit * L2(LR, LR_ref) + sum(z^2)/N + L1(inverse(concat(Q(LR), N(0, I))), x)

L2 is the per-image sum of squared differences averaged over the batch; L1 the
per-image sum of sqrt(d^2 + 1e-6) averaged over the batch. Networks run under the
configured autocast; losses, the GMM and the codecs run in float32. The real codec
``R(Q(LR))`` runs in a worker thread while the inverse pass is computed.
"""
from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import Tensor, nn

from ..codecs import codec_roundtrip, diff_jpeg, quantize
from ..models import RescalingModel
from ..models.coupling import split_channels


def l2(a: Tensor, b: Tensor) -> Tensor:
    """Per-image sum of squared differences, averaged over the batch."""
    return (a.float() - b.float()).pow(2).sum() / a.shape[0]


def l1(a: Tensor, b: Tensor, eps: float = 1e-6) -> Tensor:
    """Per-image sum of sqrt(d^2 + eps) (Charbonnier), averaged over the batch."""
    return torch.sqrt((a.float() - b.float()).pow(2) + eps).sum() / a.shape[0]


def autocast_context(device: torch.device, amp: str):
    if amp == "none":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


class Objective(nn.Module):
    """Computes every loss term of one training step; ``forward(batch) -> dict`` with ``loss``.

    Wrapping the whole step in one module lets DistributedDataParallel see a single
    forward that uses every parameter (forward and inverse passes included).
    """

    def __init__(self, model: RescalingModel, codec: str = "jpeg", quality: int = 75,
                 lambda_fit: float = 4.0, lambda_rec: float = 1.0, lambda_latent: float = 1.0,
                 amp: str = "none", channels_last: bool = False):
        super().__init__()
        self.model = model
        self.codec, self.quality = codec, quality
        self.lambda_fit, self.lambda_rec, self.lambda_latent = lambda_fit, lambda_rec, lambda_latent
        self.amp, self.channels_last = amp, channels_last
        self._pool = ThreadPoolExecutor(max_workers=1) if model.arch == "sain" else None

    def __getstate__(self):  # the thread pool cannot be pickled / deep-copied
        state = self.__dict__.copy()
        state["_pool"] = None
        return state

    def _fmt(self, t: Tensor) -> Tensor:
        return t.contiguous(memory_format=torch.channels_last) if self.channels_last else t

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        if self.model.arch == "sain":
            return self._sain(batch)
        return self._irn(batch)

    def _sain(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x, lr_ref = batch["hr"], batch["lr_ref"]
        dev = x.device
        with autocast_context(dev, self.amp):
            y, lr = self.model(self._fmt(x))
        y, lr = y.float(), lr.float()
        q = quantize(lr)
        q_cpu = q.detach().to("cpu", torch.float32)
        job = self._pool.submit(codec_roundtrip, q_cpu, self.codec, self.quality) if self._pool else None
        d = diff_jpeg(q, self.quality)
        y_sim, y_z = split_channels(y, 3)
        z = self.model.gmm.sample(y_z.shape, dtype=torch.float32, device=dev)
        with autocast_context(dev, self.amp):
            x_hat, lr_rec = self.model.inverse(self._fmt(torch.cat((d, z), 1)))
        r_ref = batch.get("lr_ref_codec")
        if r_ref is None:
            r_ref = codec_roundtrip(lr_ref.detach().cpu(), self.codec, self.quality)[0]
        r_q = job.result()[0] if job else codec_roundtrip(q_cpu, self.codec, self.quality)[0]
        terms = {
            "fit1": l2(lr, lr_ref),
            "fit2": l2(y_sim, r_ref.to(dev)),
            "rel": l2(y_sim, r_q.to(dev)),
            "reg": l2(q, lr_rec),
            "rec": l1(x_hat, x),
        }
        fit = terms["fit1"] + terms["fit2"] + terms["rel"] + terms["reg"]
        terms["loss"] = self.lambda_rec * terms["rec"] + self.lambda_fit * fit / 4
        return terms

    def _irn(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x, lr_ref = batch["hr"], batch["lr_ref"]
        with autocast_context(x.device, self.amp):
            y, lr = self.model(self._fmt(x))
        y, lr = y.float(), lr.float()
        z = split_channels(y, 3)[1]
        q = quantize(lr)
        noise = torch.randn_like(z)
        with autocast_context(x.device, self.amp):
            x_hat, _ = self.model.inverse(self._fmt(torch.cat((q, noise), 1)))
        terms = {
            "fit": l2(lr, lr_ref),
            "latent": z.pow(2).sum() / z.shape[0],
            "rec": l1(x_hat, x),
        }
        terms["loss"] = (self.lambda_fit * terms["fit"] + self.lambda_latent * terms["latent"]
                         + self.lambda_rec * terms["rec"])
        return terms
