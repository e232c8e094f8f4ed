"""The training objectives of SAIN and of the IRN baseline (Yang et al., AAAI 2023; Xiao et al., ECCV 2020).

SAIN, for a batch of HR patches ``x`` with ``LR_ref`` = bicubic(x)::

    (y_sim, z), LR = forward(x)
    x_hat, LR_rec  = inverse(concat(D(Q(LR)), gmm_sample(z.shape)))
    fit1 = L2(LR, LR_ref)        fit2 = L2(y_sim, R(LR_ref))     rel = L2(y_sim, R(Q(LR)))
    reg  = L2(Q(LR), LR_rec)     rec  = L1(x_hat, x)
    loss = rec + lambda_fit * (fit1 + fit2 + reg + rel) / 4      (lambda_fit 4 at x2, 16 at x4)

IRN::

    loss = lambda_fit * L2(LR, LR_ref) + sum(z^2)/N + L1(inverse(concat(Q(LR), N(0, I))), x)

L2 is the per-image sum of squared differences averaged over the batch; L1 the
per-image sum of sqrt(d^2 + 1e-6) averaged over the batch. ``Q`` rounds to 8 bits with the
identity as its gradient, also where it clamps (the papers); ``[loss] quantize_grad = "clamp"``
gives it the clamp's gradient instead (:meth:`Objective.quantize`). ``rec`` can instead weigh each
image by its relative error (``[loss] rec_weighting = "log"``, :func:`rec_term`): the same
value, the gradient of the batch's mean log error, i.e. of its mean PSNR. Networks run under the
configured autocast; losses, the GMM and the codecs run in float32. The real codec
``R(Q(LR))`` runs in a worker thread while the inverse pass is computed.

Objectives are plug-ins like the architectures: a function ``terms(objective, batch) ->
dict`` (with ``"loss"``) registered by name with :func:`register_objective`; a model class
names its objective (``RescalingModel.objective``), and :class:`Objective` looks it up. An
unknown name is an error naming the known ones, never a fallback. SAIN's and IRN's are
here; a new one goes in a module of its own under ``sain/train/losses/`` (imported on the
first lookup).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..codecs import codec_roundtrip, diff_jpeg, quantize
from ..models import RescalingModel
from ..precision import resolve_amp

__all__ = [
    "QUANTIZE_GRADS",
    "REC_WEIGHTINGS",
    "Objective",
    "ObjectiveSpec",
    "get_objective",
    "l1",
    "l2",
    "list_objectives",
    "rec_term",
    "register_objective",
]

Terms = Callable[["Objective", dict[str, Tensor]], dict[str, Tensor]]


@dataclass(frozen=True)
class ObjectiveSpec:
    """A registered objective.

    Attributes:
        name: the name a model class gives as ``objective``.
        terms: ``terms(objective, batch) -> {term: tensor, ..., "loss": tensor}``.
        codec_targets: the data pipeline precomputes ``batch["lr_ref_codec"]`` = R(LR_ref)
            with the configured real codec (else the batch has ``hr`` and ``lr_ref`` only).
        codec_worker: runs a real codec inside the step (a worker thread overlaps it).
    """

    name: str
    terms: Terms
    codec_targets: bool = False
    codec_worker: bool = False


_OBJECTIVES: dict[str, ObjectiveSpec] = {}


def register_objective(name: str, codec_targets: bool = False, codec_worker: bool = False) -> Callable[[Terms], Terms]:
    """Decorator: register ``terms(objective, batch) -> dict`` as the objective ``name``."""

    def deco(fn: Terms) -> Terms:
        if name in _OBJECTIVES and _OBJECTIVES[name].terms is not fn:
            raise ValueError(f"objective {name!r} is already registered")
        _OBJECTIVES[name] = ObjectiveSpec(name, fn, codec_targets, codec_worker)
        return fn

    return deco


def _discover() -> None:
    """Every module of ``sain.train.losses``: a new architecture's loss lives in a module of
    its own there and registers itself."""
    from ..models.registry import import_submodules
    from . import losses

    import_submodules(losses)


def list_objectives() -> list[str]:
    _discover()
    return list(_OBJECTIVES)


def get_objective(name: str) -> ObjectiveSpec:
    """The objective registered as ``name``; ``ValueError`` naming the known ones otherwise."""
    if name not in _OBJECTIVES:
        _discover()
    try:
        return _OBJECTIVES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown objective {name!r} (known: {', '.join(_OBJECTIVES)})") from None


def objective_of(model_or_class: RescalingModel | type[RescalingModel]) -> ObjectiveSpec:
    """The objective a model (class) names; a clear error when it names none or an unknown one."""
    name = model_or_class.objective
    arch = model_or_class.arch or getattr(model_or_class, "__name__", type(model_or_class).__name__)
    if not name:
        raise ValueError(
            f"architecture {arch!r} names no training objective (set its class attribute "
            f"'objective'; known: {', '.join(_OBJECTIVES)})"
        )
    try:
        return get_objective(name)
    except ValueError as e:
        raise ValueError(f"architecture {arch!r}: {e}") from None


def l2(a: Tensor, b: Tensor) -> Tensor:
    """Per-image sum of squared differences, averaged over the batch."""
    return (a.float() - b.float()).pow(2).sum() / a.shape[0]


def _charbonnier(a: Tensor, b: Tensor, eps: float = 1e-6) -> Tensor:
    """sqrt(d^2 + eps) per value, in float32."""
    return torch.sqrt((a.float() - b.float()).pow(2) + eps)


def l1(a: Tensor, b: Tensor, eps: float = 1e-6) -> Tensor:
    """Per-image sum of sqrt(d^2 + eps) (Charbonnier), averaged over the batch."""
    return _charbonnier(a, b, eps).sum() / a.shape[0]


#: The gradient of ``Q`` (``[loss] quantize_grad``): ``"identity"`` everywhere (the papers) or
#: ``"clamp"``: zero where the LR leaves [0, 1] (the rounding stays straight-through).
QUANTIZE_GRADS = ("identity", "clamp")

#: How the reconstruction term weighs the images of a batch (``[loss] rec_weighting``).
REC_WEIGHTINGS = ("sum", "log")


def _check_weighting(weighting: str) -> None:
    if weighting not in REC_WEIGHTINGS:
        raise ValueError(f"rec_weighting must be one of {', '.join(REC_WEIGHTINGS)}, got {weighting!r}")


def rec_term(x_hat: Tensor, x: Tensor, weighting: str = "sum", eps: float = 1e-6) -> Tensor:
    """The reconstruction term: :func:`l1` per image, combined over the batch by ``weighting``.

    ``"sum"`` (the papers): the batch mean of the per-image errors ``e_i``, so an image's pull
    on the weights grows with its absolute error (a low-quality sample, with a large error,
    dominates). ``"log"``: ``sum_i (m / e_i) * e_i / B`` with ``m`` = mean(e) and both factors
    detached: the same value as ``"sum"``, but the gradient is ``m`` times that of
    mean(log e_i), the batch's mean log error, which is what a mean PSNR measures. Every image
    then pulls by its *relative* error.
    """
    _check_weighting(weighting)
    per_image = _charbonnier(x_hat, x, eps).flatten(1).sum(1)
    if weighting == "sum":
        return per_image.mean()
    e = per_image.detach()
    return (per_image * (e.mean() / e)).mean()


def autocast_context(device: torch.device, amp: str):
    """The autocast context of ``amp`` ("auto" resolved for ``device`` first, see
    :func:`sain.precision.resolve_amp`); an unknown value is an error, never a silent fp16."""
    amp = resolve_amp(amp, device)
    if amp == "none":
        return contextlib.nullcontext()
    if amp not in ("bf16", "fp16"):
        raise ValueError(f"amp must be auto|bf16|fp16|none, got {amp!r}")
    return torch.autocast(device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


class Objective(nn.Module):
    """Computes every loss term of one training step; ``forward(batch) -> dict`` with ``loss``.

    Wrapping the whole step in one module lets DistributedDataParallel see a single
    forward that uses every parameter (forward and inverse passes included).
    """

    model: RescalingModel

    def __init__(
        self,
        model: RescalingModel,
        codec: str = "jpeg",
        quality: int = 75,
        lambda_fit: float = 4.0,
        lambda_rec: float = 1.0,
        lambda_latent: float = 1.0,
        amp: str = "none",
        channels_last: bool = False,
        rec_weighting: str = "sum",
        quantize_grad: str = "identity",
    ):
        super().__init__()
        _check_weighting(rec_weighting)
        if quantize_grad not in QUANTIZE_GRADS:
            raise ValueError(f"quantize_grad must be one of {', '.join(QUANTIZE_GRADS)}, got {quantize_grad!r}")
        self.rec_weighting, self.quantize_grad = rec_weighting, quantize_grad
        self.model = model
        self.codec, self.quality = codec, quality
        self.lambda_fit, self.lambda_rec, self.lambda_latent = lambda_fit, lambda_rec, lambda_latent
        self.amp, self.channels_last = amp, channels_last
        self.spec = objective_of(model)
        self._pool = ThreadPoolExecutor(max_workers=1) if self.spec.codec_worker else None

    def __getstate__(self):  # the thread pool cannot be pickled / deep-copied
        state = self.__dict__.copy()
        state["_pool"] = None
        return state

    def _fmt(self, t: Tensor) -> Tensor:
        return t.contiguous(memory_format=torch.channels_last) if self.channels_last else t

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return self.spec.terms(self, batch)

    def fmt(self, t: Tensor) -> Tensor:
        """``t`` in the configured memory format (channels-last or as it is)."""
        return self._fmt(t)

    def autocast(self, device: torch.device):
        """The configured autocast context for the network passes."""
        return autocast_context(device, self.amp)

    def quantize(self, lr: Tensor) -> Tensor:
        """``Q(LR)``: 8-bit rounding with the configured gradient (:func:`sain.codecs.quantize`;
        ``"clamp"``: none where the LR leaves [0, 1])."""
        return quantize(lr, clamp_grad=self.quantize_grad == "clamp")

    def rec(self, x_hat: Tensor, x: Tensor) -> Tensor:
        """The reconstruction term with the configured weighting (:func:`rec_term`)."""
        return rec_term(x_hat, x, self.rec_weighting)


@register_objective("sain", codec_targets=True, codec_worker=True)
def sain_terms(obj: Objective, batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """SAIN's five terms (module docstring)."""
    model = obj.model
    x, lr_ref = batch["hr"], batch["lr_ref"]
    dev = x.device
    with obj.autocast(dev):
        y, lr = model(obj.fmt(x))
    y, lr = y.float(), lr.float()
    q = obj.quantize(lr)
    q_cpu = q.detach().to("cpu", torch.float32)
    job = obj._pool.submit(codec_roundtrip, q_cpu, obj.codec, obj.quality) if obj._pool else None
    d = diff_jpeg(q, obj.quality)
    y_sim, _ = model.split_output(y)
    z = model.sample_latent(d)
    with obj.autocast(dev):
        x_hat, lr_rec = model.inverse(obj.fmt(torch.cat((d, z), 1)))
    r_ref = batch.get("lr_ref_codec")
    if r_ref is None:
        r_ref = codec_roundtrip(lr_ref.detach().cpu(), obj.codec, obj.quality)[0]
    r_q = job.result()[0] if job else codec_roundtrip(q_cpu, obj.codec, obj.quality)[0]
    return five_terms(obj, x, x_hat, lr, lr_ref, q, lr_rec, y_sim, r_ref, r_q)


def five_terms(
    obj: Objective,
    x: Tensor,
    x_hat: Tensor,
    lr: Tensor,
    lr_ref: Tensor,
    q: Tensor,
    lr_rec: Tensor,
    y_sim: Tensor,
    r_ref: Tensor,
    r_q: Tensor,
) -> dict[str, Tensor]:
    """SAIN's five terms and their weighted sum ``loss`` (module docstring), from the passes'
    results: ``r_ref`` / ``r_q`` are the real codec's outputs of ``lr_ref`` / ``q`` (moved to
    ``x``'s device here)."""
    dev = x.device
    terms = {
        "fit1": l2(lr, lr_ref),
        "fit2": l2(y_sim, r_ref.to(dev)),
        "rel": l2(y_sim, r_q.to(dev)),
        "reg": l2(q, lr_rec),
        "rec": obj.rec(x_hat, x),
    }
    fit = terms["fit1"] + terms["fit2"] + terms["rel"] + terms["reg"]
    terms["loss"] = obj.lambda_rec * terms["rec"] + obj.lambda_fit * fit / 4
    return terms


@register_objective("irn")
def irn_terms(obj: Objective, batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """IRN's three terms (module docstring)."""
    model = obj.model
    x, lr_ref = batch["hr"], batch["lr_ref"]
    with obj.autocast(x.device):
        y, lr = model(obj.fmt(x))
    y, lr = y.float(), lr.float()
    z = model.split_output(y)[1]
    q = obj.quantize(lr)
    noise = torch.randn_like(z)
    with obj.autocast(x.device):
        x_hat, _ = model.inverse(obj.fmt(torch.cat((q, noise), 1)))
    terms = {
        "fit": l2(lr, lr_ref),
        "latent": z.pow(2).sum() / z.shape[0],
        "rec": obj.rec(x_hat, x),
    }
    terms["loss"] = obj.lambda_fit * terms["fit"] + obj.lambda_latent * terms["latent"] + obj.lambda_rec * terms["rec"]
    return terms
