"""SAIN-QF: SAIN whose compression blocks know the JPEG quality (issue 13, beyond the paper).

    HR x ─Haar^k─> [E-block]*e ─────────────> [V-block | q]*v ─> (y_sim, z)
                          └─ LR of the last E-block = the thumbnail, independent of q

    upscale: (LR compressed at q, z ~ GMM) ─[V-block | q]^-1─> ─E^-1─> ─Haar^-k─> HR

    q ─/100─> Linear(1, 64) ─SiLU─> Linear(64, cond_dim) = cond   (one embedding, shared)
    V-block subnet (FiLMDenseBlock):  o_j = lrelu(conv_j([x, o_1..o_{j-1}])) * (1 + gamma_j) + beta_j
                                      (gamma, beta) = Linear_subnet(cond), zero-initialised

Design (what is conditioned, and why):

* **The downscale ignores the quality.** Haar and the E-blocks' forward are SAIN's, unchanged:
  one thumbnail serves every later compression, including a re-compression by a second
  party at a quality nobody knew when it was made. (:meth:`downscale` takes no quality.)
* **The V-blocks are conditioned.** They simulate the codec (forward) and undo it (inverse
  at restore time), which is exactly what depends on the quality. Each of their subnets F,
  G, H is a :class:`FiLMDenseBlock`: SAIN's dense block whose four hidden feature maps are
  scaled and shifted per channel by a vector computed from the condition (FiLM, Perez et al.
  2018). The condition enters the subnets only, never the transformed variables, so a
  V-block is an exact bijection for each quality (:mod:`sain.models.coupling`), forward and
  inverse with opposite log-determinants.
* **Identity at init.** The FiLM projections are zero-initialised: ``gamma = beta = 0``, so a
  fresh SAIN-QF computes exactly what the plain SAIN with the same weights computes, and
  :meth:`SAINQF.from_sain` turns the bundled ``sain-x2-jpeg`` into a starting point that is
  already as good as it at every quality (fine-tuning instead of training from scratch, which
  matters on a CPU budget). Every weight of the plain SAIN keeps its name and shape here
  (``down_operations``, ``comp_operations.{k}.{F,G,H}.conv{1..5}``, ``gmm``); what is new is
  ``quality_embedding.*`` and ``comp_operations.{k}.{F,G,H}.film.*``.
* **One embedding of QF/100** shared by every V-block subnet (each subnet has its own FiLM
  projection), so qualities in between the trained ones interpolate smoothly.
* **Quality at call time.** ``forward(x, quality=...)``, ``inverse(y, quality=...)`` and
  ``upscale(lr, generator, quality=...)`` take an int or a (N,) tensor of qualities in 1..100;
  ``None`` means ``model.default_quality`` (75, the paper's training quality), so code that
  knows nothing of qualities (tiling, evaluation, ``sain decode``) still works: it gets the
  QF-75 behaviour, and can set ``model.default_quality`` to what the file says.

Alternatives considered (not built):

* *Conditioning the E-blocks' inverse as well.* An E-block's inverse is fixed by its forward;
  conditioning the inverse means conditioning the forward, i.e. a thumbnail that depends on
  the quality (excluded above), or giving up exact invertibility (forward at one condition,
  inverse at another). The V-blocks sit after the E-blocks exactly so that they can carry
  everything codec-specific.
* *The quality as an extra constant input plane* of each subnet: a per-channel bias of the
  first convolution only, weaker than modulating all four hidden layers, and it changes
  ``conv1``'s shape, so the plain SAIN's weights no longer load.
* *One V-block stack per quality bucket* (or per-QF models): several times the parameters,
  no interpolation between buckets, and each bucket sees a fraction of the data.
* *FiLM on the pre-activations* instead of the activations: equally identity at init; after
  the LeakyReLU the shift can also move the features' zero point for the next layers.
* *Embedding the quantisation tables themselves* (128 numbers) instead of QF/100: would use
  non-libjpeg tables directly, but :mod:`sain.codecs.jpeg_quality` maps those to the nearest
  libjpeg quality anyway, and the scalar keeps the model codec-agnostic (WebP has a quality
  but no tables).

Speed: a FiLM dense block runs the concatenating form under autograd, not the dense
block's fused form with the hand-written backward (the per-sample modulation does not fold
into stacked weights); 9 of SAIN x2's 29 subnets are V-block subnets. Measured on this
project's CPU (one thread, batch 4 of 64 px, float32, the "sain" and "sain-qf" objectives
with the real codec in the step): 4.0-4.1 s per training step for both, within noise.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import RescalingModel, cat_channels
from .coupling import InvBlock
from .registry import register
from .sain import SAIN, count_blocks, scale_of_width
from .subnet import SLOPE, DenseBlock

DEFAULT_TRAIN_RANGE = (20, 95)


def check_quality_mix(mix: Any, quality_range: tuple[int, int]) -> tuple[tuple[int, int, float], ...]:
    """``[[lo, hi, weight], ...]`` checked (integers ``1 <= lo <= hi <= 100`` inside
    ``quality_range``, weights > 0) as a tuple of ``(lo, hi, weight)``; ValueError otherwise."""
    what = "train_quality_mix"
    if not isinstance(mix, list | tuple) or not mix:
        raise ValueError(f"{what} must be a non-empty list of [lo, hi, weight], got {mix!r}")
    parts = []
    for part in mix:
        if not isinstance(part, list | tuple) or len(part) != 3:
            raise ValueError(f"{what}: each part is [lo, hi, weight], got {part!r}")
        lo, hi = (SAINQF._check_quality_number(v, what) for v in part[:2])
        weight = part[2]
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not 0 < float(weight) < float("inf"):
            raise ValueError(f"{what}: a weight is a positive number, got {weight!r}")
        if not quality_range[0] <= lo <= hi <= quality_range[1]:
            raise ValueError(
                f"{what}: part {[lo, hi]} must satisfy lo <= hi within train_quality_range {list(quality_range)}"
            )
        parts.append((lo, hi, float(weight)))
    return tuple(parts)


class QualityEmbedding(nn.Module):
    """``q`` (N,) in 1..100 -> condition (N, cond_dim): a 2-layer MLP of ``q / 100``.

    Shape:
        - q: (N,), any floating or integer dtype
        - output: (N, cond_dim) in ``dtype`` (default float32)
    """

    def __init__(self, cond_dim: int = 32, hidden: int = 64):
        super().__init__()
        if cond_dim < 1 or hidden < 1:
            raise ValueError(f"cond_dim and hidden must be >= 1, got {cond_dim}, {hidden}")
        self.fc1 = nn.Linear(1, hidden)
        self.fc2 = nn.Linear(hidden, cond_dim)

    def forward(self, q: Tensor, dtype: torch.dtype | None = None) -> Tensor:
        dtype = dtype or self.fc1.weight.dtype
        h = F.silu(self.fc1((q.to(dtype) / 100.0).unsqueeze(1)))
        return self.fc2(h)


class FiLMDenseBlock(DenseBlock):
    """SAIN's dense block with FiLM-modulated hidden features: ``(N, c_in, h, w), (N, cond_dim)
    -> (N, c_out, h, w)``.

    ``o_j = lrelu(conv_j([x, o_1, .., o_{j-1}])) * (1 + gamma_j) + beta_j`` for the four hidden
    layers, ``(gamma, beta) = film(cond)`` with one ``film`` projection (cond_dim -> 2 * 4 *
    growth) zero-initialised, so at init the block equals :class:`DenseBlock` with the same
    convolutions exactly. ``conv1..conv5`` keep the dense block's names and shapes (its
    weights load as they are). The modulation is per sample and per channel, so the block's
    receptive radius is the dense block's (tiling stays exact).
    """

    def __init__(self, c_in: int, c_out: int, cond_dim: int, growth: int = 32):
        super().__init__(c_in, c_out, growth)
        if cond_dim < 1:
            raise ValueError(f"cond_dim must be >= 1, got {cond_dim}")
        self.cond_dim = cond_dim
        self.film = nn.Linear(cond_dim, 2 * 4 * growth)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        if cond is None or cond.dim() != 2 or cond.shape != (x.shape[0], self.cond_dim):
            got = None if cond is None else tuple(cond.shape)
            raise ValueError(f"FiLMDenseBlock needs cond of shape ({x.shape[0]}, {self.cond_dim}), got {got}")
        mod = self.film(cond)
        # per sample and channel: (N, growth, 1, 1) each, cast to the features' (autocast) dtype
        gammas = (1 + mod[:, : 4 * self.growth])[:, :, None, None].chunk(4, 1)
        betas = mod[:, 4 * self.growth :][:, :, None, None].chunk(4, 1)
        feats = [x]
        for conv, g, b in zip((self.conv1, self.conv2, self.conv3, self.conv4), gammas, betas, strict=True):
            o = F.leaky_relu(conv(torch.cat(feats, 1) if len(feats) > 1 else x), SLOPE)
            feats.append(o * g.to(o.dtype) + b.to(o.dtype))
        return self.conv5(torch.cat(feats, 1))


def _film_constructor(growth: int = 32):
    def make(c_in: int, c_out: int, cond_dim: int) -> FiLMDenseBlock:
        return FiLMDenseBlock(c_in, c_out, cond_dim, growth)

    return make


@register("sain-qf")
class SAINQF(SAIN):
    """SAIN with quality-conditioned V-blocks (module docstring); see :mod:`sain.models.base`.

    Args:
        scale, e_blocks, v_blocks, gmm_components: as :class:`~sain.models.SAIN`.
        cond_dim: size of the quality embedding (the FiLM condition).
        embed_hidden: hidden width of the embedding MLP.
        default_quality: the quality used when a call gives none (1..100).
        train_quality_range: ``[lo, hi]``, the range the ``"sain-qf"`` objective draws each
            sample's quality from, uniformly over the integers (default ``[20, 95]``).
        train_quality_mix: instead of one uniform range, a mixture of them:
            ``[[lo, hi, weight], ...]``; each sample picks a part with probability
            proportional to its weight, then a quality uniformly in its ``lo..hi``
            (e.g. ``[[20, 60, 1], [61, 95, 3]]`` trains three quarters of the samples at
            61..95). The parts must lie in ``train_quality_range``. Default: none.

    Shape:
        ``forward``: x (N, 3, H, W) in [0, 1] -> y (N, 3*s^2, H/s, W/s), lr (N, 3, H/s, W/s).
        ``inverse``: y (N, 3*s^2, h, w) -> x (N, 3, h*s, w*s), lr (N, 3, h, w).

    Example:
        >>> model = SAINQF(2, e_blocks=1, v_blocks=1).eval()
        >>> x = torch.rand(2, 3, 16, 16)
        >>> y, lr = model(x, quality=torch.tensor([30, 90]))
        >>> torch.allclose(model.inverse(y, quality=torch.tensor([30, 90]))[0], x, atol=1e-5)
        True
    """

    objective = "sain-qf"
    quality_aware = True

    def __init__(
        self,
        scale: int = 2,
        e_blocks: int | None = None,
        v_blocks: int | None = None,
        gmm_components: int = 5,
        cond_dim: int = 32,
        embed_hidden: int = 64,
        default_quality: int = 75,
        train_quality_range: list[int] | None = None,
        train_quality_mix: list[list[float]] | None = None,
    ):
        super().__init__(scale, e_blocks, v_blocks, gmm_components)
        self.cond_dim, self.embed_hidden = int(cond_dim), int(embed_hidden)
        self.default_quality = self._check_quality_number(default_quality, "default_quality")
        lo, hi = DEFAULT_TRAIN_RANGE if train_quality_range is None else tuple(train_quality_range)
        lo = self._check_quality_number(lo, "train_quality_range")
        hi = self._check_quality_number(hi, "train_quality_range")
        if lo > hi:
            raise ValueError(f"train_quality_range must be [lo, hi] with lo <= hi, got {[lo, hi]}")
        self.train_quality_range = (lo, hi)
        self.train_quality_mix = None if train_quality_mix is None else check_quality_mix(train_quality_mix, (lo, hi))
        self.quality_embedding = QualityEmbedding(self.cond_dim, self.embed_hidden)
        self.comp_operations = nn.ModuleList(
            InvBlock(self.channels, subnet_constructor=_film_constructor(), cond_dim=self.cond_dim)
            for _ in range(self.v_blocks)
        )

    # -- configuration -------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "cond_dim": self.cond_dim,
            "embed_hidden": self.embed_hidden,
            "default_quality": self.default_quality,
            "train_quality_range": list(self.train_quality_range),
            # only when set, so files written before the option existed read back the same
            **({"train_quality_mix": [list(p) for p in self.train_quality_mix]} if self.train_quality_mix else {}),
        }

    @classmethod
    def infer_config(cls, sd: Mapping[str, Tensor]) -> dict[str, Any] | None:
        """The configuration of a SAIN-QF state dict (``None`` without ``quality_embedding``);
        the default and training qualities are not in the weights and take their defaults."""
        fc1, fc2 = sd.get("quality_embedding.fc1.weight"), sd.get("quality_embedding.fc2.weight")
        w = sd.get("down_operations.0.F.conv1.weight")
        if fc1 is None or fc2 is None or w is None:
            return None
        k = sd["gmm.gmm_para"].shape[1] if "gmm.gmm_para" in sd else 5
        return {
            "scale": scale_of_width(w.shape[1] + 3),
            "e_blocks": count_blocks(sd, "down_operations"),
            "v_blocks": count_blocks(sd, "comp_operations"),
            "gmm_components": int(k),
            "cond_dim": int(fc2.shape[0]),
            "embed_hidden": int(fc1.shape[0]),
        }

    @classmethod
    def from_sain(cls, sain_model: SAIN, **options: Any) -> SAINQF:
        """A SAIN-QF carrying every weight of a plain SAIN (E-blocks, the V-blocks' convolutions,
        the GMM) with identity modulation: at any quality it computes what ``sain_model``
        computes. ``options``: the new constructor arguments (``cond_dim``, ...). Same dtype,
        device and train/eval mode as ``sain_model``."""
        if type(sain_model) is not SAIN:
            raise TypeError(f"from_sain needs a plain SAIN, got {type(sain_model).__name__}")
        model = cls(**{**sain_model.config(), **options})
        ref = next(sain_model.parameters())
        model.to(device=ref.device, dtype=ref.dtype)
        missing, unexpected = model.load_state_dict(sain_model.state_dict(), strict=False)
        new = [k for k in missing if not (k.startswith("quality_embedding.") or ".film." in k)]
        if new or unexpected:
            raise ValueError(f"SAIN weights do not map onto SAIN-QF: missing {new[:1]}, unexpected {unexpected[:1]}")
        return model.train(sain_model.training)

    @classmethod
    def from_pretrained(cls, source: RescalingModel, config: Mapping[str, Any]) -> SAINQF:
        """``run.init``: a SAIN-QF from a plain SAIN (:meth:`from_sain`) or from a SAIN-QF."""
        if type(source) is SAIN:
            return cls.from_sain(source, **{k: v for k, v in config.items() if k not in source.config()})
        return super().from_pretrained(source, config)  # type: ignore[return-value]

    # -- quality -------------------------------------------------------------------
    @staticmethod
    def _check_quality_number(q: Any, what: str = "quality") -> int:
        if isinstance(q, bool) or not isinstance(q, numbers.Real):
            raise ValueError(f"{what}: a quality is an integer in 1..100, got {q!r}")
        value = float(q)
        if not value.is_integer() or not 1 <= value <= 100:
            raise ValueError(f"{what}: a quality is an integer in 1..100, got {q!r}")
        return int(value)

    def qualities(self, quality: int | Tensor | None, n: int, device: torch.device | None = None) -> Tensor:
        """``quality`` (an int, a 0-d or (N,) tensor, or ``None`` for ``default_quality``) as a
        float32 (N,) tensor on ``device``; values must lie in 1..100."""
        if quality is None:
            quality = self.default_quality
        if isinstance(quality, Tensor):
            q = quality.detach().reshape(-1) if quality.dim() <= 1 else quality
            if q.dim() != 1 or q.shape[0] not in (1, n) or (quality.dim() == 1 and q.shape[0] != n):
                raise ValueError(f"quality must be an int or a ({n},) tensor, got shape {tuple(quality.shape)}")
            q = q.to(device=device, dtype=torch.float32).expand(n)
            if q.numel() and not (torch.isfinite(q).all() and (q >= 1).all() and (q <= 100).all()):
                raise ValueError("quality values must be in 1..100")
            return q
        return torch.full((n,), float(self._check_quality_number(quality)), device=device)

    def condition(self, quality: int | Tensor | None, n: int, like: Tensor) -> Tensor:
        """The FiLM condition (N, cond_dim) for ``quality``, on ``like``'s device, in the
        embedding's dtype (the FiLM blocks cast their modulation to their input's)."""
        return self.quality_embedding(self.qualities(quality, n, like.device))

    # -- network -------------------------------------------------------------------
    def forward(
        self,
        x: Tensor,
        return_logdet: bool = False,
        *,
        quality: int | Tensor | None = None,
    ):
        """HR ``x`` (N, 3, H, W) -> ``(y, lr)`` (+ ``logdet`` (N,) if asked); the V-blocks at
        ``quality`` (default ``default_quality``); ``lr`` does not depend on it."""
        self._check_hr(x)
        cond = self.condition(quality, x.shape[0], x)
        logdet = x.new_zeros(x.shape[0])
        out = x
        for op in self.haar_operations:
            out, ld = op(out)
            logdet = logdet + ld
        lr = out[:, :3]
        for op in self.down_operations:
            out, lr, ld = op(out)
            logdet = logdet + ld
        for op in self.comp_operations:
            out, ld = op(out, cond=cond)
            logdet = logdet + ld
        return (out, lr, logdet) if return_logdet else (out, lr)

    def inverse(
        self,
        y: Tensor,
        return_logdet: bool = False,
        *,
        quality: int | Tensor | None = None,
    ):
        """``y`` (N, 3*s^2, h, w) -> ``(x, lr)``, the V-blocks inverted at ``quality``."""
        self._check_y(y)
        cond = self.condition(quality, y.shape[0], y)
        logdet = y.new_zeros(y.shape[0])
        out = y
        for op in reversed(self.comp_operations):
            out, ld = op(out, rev=True, cond=cond)
            logdet = logdet + ld
        lr = None
        for op in reversed(self.down_operations):
            out, block_lr, ld = op(out, rev=True)
            if lr is None:
                lr = block_lr
            logdet = logdet + ld
        if lr is None:
            lr = out[:, :3]
        for op in reversed(self.haar_operations):
            out, ld = op(out, rev=True)
            logdet = logdet + ld
        return (out, lr, logdet) if return_logdet else (out, lr)

    def upscale(
        self,
        lr: Tensor,
        generator: torch.Generator | None = None,
        quality: int | Tensor | None = None,
    ) -> Tensor:
        """Received LR (N, 3, h, w), compressed at ``quality`` -> restored HR (not clamped)."""
        self._check_lr(lr)
        z = self.sample_latent(lr, generator)
        y = torch.cat((lr, z), 1) if torch.is_grad_enabled() else cat_channels(lr, z)
        return self.inverse(y, quality=quality)[0]
