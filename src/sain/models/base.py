"""The contract shared by every rescaling network of the project (SAIN, IRN, ...).

    y, lr = model(x)            x (N, 3, H, W) in [0, 1], H and W multiples of the scale
                                y (N, 3*s^2, H/s, W/s): the full forward output
                                lr (N, 3, H/s, W/s): the high-quality LR image to send
    x, lr = model.inverse(y)    the exact inverse of the forward; lr is the recovered LR
    z = model.sample_latent(lr, generator)   a latent for upscaling, (N, 3*(s^2-1), h, w)
    lr = model.downscale(hr)    == model(hr)[1]
    hr = model.upscale(lr, generator)        == model.inverse(cat(lr, z))[0]

``model(x, return_logdet=True)`` and ``model.inverse(y, return_logdet=True)`` also return
the per-sample log-determinant (forward == -inverse for the same pair).

A subclass is an architecture plug-in (see CONTRIBUTING.md): registered by name with
:func:`sain.models.register`, it owns

* its configuration: ``config()`` returns the constructor arguments, :meth:`from_config`
  rebuilds the model from them (unknown keys are a one-line error);
* its checkpoints: :meth:`infer_config` reads the configuration of a reference-layout
  state dict from its keys and shapes (``None`` when the keys are not this architecture's),
  :meth:`convert_reference_state_dict` maps such a dict onto its own module names, and
  :meth:`from_state_dict` builds and strictly loads a model;
* its inference interface: ``downscale``, ``upscale``, ``sample_latent(lr, generator,
  chunk)`` and :meth:`receptive_radius` (how far an output pixel sees: the exact tile
  margin for :mod:`sain.tiling`);
* the name of its training objective (``objective``, a key of
  :func:`sain.train.objective.register_objective`).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import CheckpointError


def cat_channels(*parts: Tensor, memory_format: torch.memory_format | None = None) -> Tensor:
    """``torch.cat(parts, 1)`` in ``memory_format`` (default: the first part's).

    ``torch.cat`` of a channels-last tensor and a contiguous one (the latent ``z``) returns
    a contiguous tensor, and every convolution of the network would then run in NCHW,
    about twice as slow on the CPU; this keeps channels-last.
    """
    from .subnet import memory_format_of

    ref = parts[0]
    fmt = memory_format_of(ref) if memory_format is None else memory_format
    if fmt is torch.contiguous_format:
        return torch.cat(parts, 1)
    dtype = ref.dtype
    for p in parts[1:]:
        dtype = torch.promote_types(dtype, p.dtype)
    n, _, h, w = ref.shape
    out = torch.empty((n, sum(p.shape[1] for p in parts), h, w), dtype=dtype, device=ref.device, memory_format=fmt)
    c = 0
    for p in parts:
        out[:, c : c + p.shape[1]] = p
        c += p.shape[1]
    return out


class RescalingModel(nn.Module):
    """Base class: input checks, convenience methods and the plug-in contract."""

    #: Registry name, set by :func:`sain.models.register`.
    arch: str = ""
    #: Name of the training objective (see :mod:`sain.train.objective`).
    objective: str = ""
    #: ``upscale`` / ``inverse`` take ``quality=`` (the codec quality of the received LR).
    quality_aware: bool = False

    def __init__(self, scale: int):
        super().__init__()
        if scale not in (2, 4, 8):
            raise ValueError(f"scale must be 2, 4 or 8, got {scale!r}")
        self.scale = scale
        self.levels = int(math.log2(scale))
        self.latent_channels = 3 * (scale * scale - 1)

    # -- configuration -------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """Constructor arguments; ``type(model).from_config(model.config())`` rebuilds the model."""
        raise NotImplementedError

    @classmethod
    def config_fields(cls) -> dict[str, inspect.Parameter]:
        """The constructor's keyword arguments (name -> parameter, with default and annotation)."""
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        return {p.name: p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RescalingModel:
        """A fresh model from constructor arguments; an unknown key is a one-line error."""
        known = cls.config_fields()
        unknown = sorted(set(config) - set(known))
        if unknown:
            raise CheckpointError(
                f"{cls.arch or cls.__name__}: unknown option {unknown[0]!r} (known: {', '.join(known)})"
            )
        return cls(**config)

    @classmethod
    def from_pretrained(cls, source: RescalingModel, config: Mapping[str, Any]) -> RescalingModel:
        """A model of this class and ``config`` initialised from a trained ``source`` (the
        ``run.init`` of a training config). The default takes a model of the same class and
        configuration as it is; a class that can start from another one (SAIN-QF from SAIN)
        overrides this."""
        model = cls.from_config(config)
        if type(source) is not cls or source.config() != model.config():
            raise CheckpointError(f"cannot initialise {cls.arch} {dict(config)} from {source.arch} {source.config()}")
        model.load_state_dict(source.state_dict())
        return model

    # -- checkpoints ---------------------------------------------------------------
    @classmethod
    def infer_config(cls, sd: Mapping[str, Tensor]) -> dict[str, Any] | None:
        """The configuration of a reference-layout state dict of this architecture, read from
        its keys and shapes; ``None`` when the keys are not this architecture's. Raises
        :class:`~sain.checkpoint.CheckpointError` for a dict that is this architecture's
        but inconsistent."""
        return None

    @classmethod
    def convert_reference_state_dict(cls, sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """A reference-layout state dict renamed to this class's module names.

        The default drops the reference's constant Haar filters (``*.haar_weights``, a
        non-persistent buffer here) and keeps every other key: SAIN's and IRN's module
        names match the reference code's.
        """
        return {k: v for k, v in sd.items() if not k.endswith("haar_weights")}

    @classmethod
    def from_state_dict(
        cls, sd: Mapping[str, Tensor], config: Mapping[str, Any] | None = None, source: str = "checkpoint"
    ) -> RescalingModel:
        """Build the model (``config``, or the one inferred from a reference ``sd``) and load
        ``sd`` strictly: every key present with its shape, nothing extra. Eval mode."""
        if config is None:
            config = cls.infer_config(sd)
            if config is None:
                raise CheckpointError(f"{source}: not a {cls.arch or cls.__name__} state dict")
        try:
            model = cls.from_config(config)
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"{source}: {e}") from None
        sd = cls.convert_reference_state_dict(sd)
        expected = model.state_dict()
        missing = sorted(set(expected) - set(sd))
        unexpected = sorted(set(sd) - set(expected))
        if missing or unexpected:
            parts = []
            if missing:
                parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
            if unexpected:
                parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
            raise CheckpointError(f"{source}: weights do not match {model.arch} {dict(config)}: " + ", ".join(parts))
        for k, v in expected.items():
            if sd[k].shape != v.shape:
                raise CheckpointError(f"{source}: {k} has shape {tuple(sd[k].shape)}, expected {tuple(v.shape)}")
        model.load_state_dict({k: sd[k].to(v.dtype) for k, v in expected.items()})
        return model.eval()

    # -- checks --------------------------------------------------------------------
    def _check_hr(self, x: Tensor) -> None:
        if not isinstance(x, Tensor) or x.dim() != 4:
            raise ValueError(f"expected a 4-D (N, 3, H, W) tensor, got shape {tuple(getattr(x, 'shape', ()))}")
        if x.shape[1] != 3:
            raise ValueError(f"expected 3 (RGB) channels, got {x.shape[1]}")
        if x.shape[2] % self.scale or x.shape[3] % self.scale:
            raise ValueError(f"image size {x.shape[2]}x{x.shape[3]} is not a multiple of the scale {self.scale}")

    def _check_y(self, y: Tensor) -> None:
        c = 3 * self.scale * self.scale
        if not isinstance(y, Tensor) or y.dim() != 4:
            raise ValueError(f"expected a 4-D (N, {c}, h, w) tensor, got shape {tuple(getattr(y, 'shape', ()))}")
        if y.shape[1] != c:
            raise ValueError(f"expected {c} channels for the inverse at x{self.scale}, got {y.shape[1]}")

    def _check_lr(self, lr: Tensor) -> None:
        if not isinstance(lr, Tensor) or lr.dim() != 4 or lr.shape[1] != 3:
            raise ValueError(f"expected a (N, 3, h, w) LR tensor, got shape {tuple(getattr(lr, 'shape', ()))}")

    # -- the network -----------------------------------------------------------------
    def inverse(self, y: Tensor, return_logdet: bool = False) -> Any:
        """``y`` (N, 3*s^2, h, w) -> ``(x, lr)`` (+ ``logdet``): the exact inverse of the forward."""
        raise NotImplementedError

    # -- inference interface --------------------------------------------------------
    def sample_latent(self, lr: Tensor, generator: torch.Generator | None = None, chunk: int | None = None) -> Tensor:
        """A latent ``z`` (N, 3*(s^2-1), h, w) for upscaling ``lr`` (same dtype and device).

        ``chunk`` (elements per draw, a multiple of 16) asks for the same sample drawn in
        pieces, to bound the sampler's temporaries for a whole large photo (tiling).
        """
        raise NotImplementedError

    def receptive_radius(self, direction: str) -> int:
        """How far (in HR pixels) an output pixel sees from its own block, for ``"down"``
        (HR -> the LR to send) or ``"up"`` (LR + z -> HR); a tile margin of that many
        pixels makes tiled processing exact (:mod:`sain.tiling`)."""
        raise NotImplementedError

    def split_output(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """The forward output ``y`` as ``(y[:, :3], z)``: the LR part and the latent part,
        with a gradient that keeps ``y``'s memory format."""
        from .coupling import split_channels

        return split_channels(y, 3)

    def downscale(self, hr: Tensor) -> Tensor:
        """HR (N, 3, H, W) in [0, 1] -> the LR image to send (N, 3, H/s, W/s), not yet quantised."""
        return self(hr)[1]

    def upscale(self, lr: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Received LR (N, 3, h, w) -> restored HR (N, 3, h*s, w*s) (not clamped)."""
        self._check_lr(lr)
        z = self.sample_latent(lr, generator)
        if torch.is_grad_enabled():
            return self.inverse(torch.cat((lr, z), 1))[0]
        return self.inverse(cat_channels(lr, z))[0]
