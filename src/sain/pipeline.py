"""The whole rescaling pipeline on tensors: HR -> LR -> 8 bits -> codec -> restored HR.

    hr ─method.downscale─> LR (8-bit, sent) ─codec (JPEG/WebP/AVIF/PNG)─> received
    received ─method.upscale (seeded latent)─> restored HR (8-bit)

A *method* is anything with that interface (:class:`Method`): a network
(:class:`ModelMethod`, optionally tiled), the bicubic baseline (:class:`BicubicMethod`:
MATLAB-style bicubic down and up) or ``jpeg-hr`` (:class:`HRCodecMethod`: the HR image
itself goes through the codec). These are shared by validation during training,
``sain eval``, the round trips of :mod:`sain.compare` and the command-line encoder and
decoder, so all of them measure exactly the same thing. :func:`get_method` turns a name
(``"bicubic"``, ``"jpeg-hr"``, a zoo name or weight file) or a model into a method.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from .codecs import codec_roundtrip, quantize_u8
from .imaging import bicubic_down, bicubic_up
from .models import RescalingModel
from .precision import check_precision, downscale_precision, inference_autocast
from .tiling import tiled_downscale, tiled_upscale
from .zoo import get_model, model_name

__all__ = [
    "AUTO_TILE_PIXELS",
    "DEFAULT_TILE",
    "BicubicMethod",
    "HRCodecMethod",
    "Method",
    "ModelMethod",
    "RoundTrip",
    "downscale",
    "get_method",
    "quantize_u8",
    "roundtrip",
    "tile_core",
    "upscale",
]

#: With ``tile="auto"``, images with more LR pixels than this are processed in tiles.
AUTO_TILE_PIXELS = 1 << 20
#: Core of a tile, in LR pixels, when tiling (the context margin is added around it).
#: With the bundled models' measured overlap (24 LR px) a 12 MP photo's tiles compute
#: 1.14x the image at core 512 and 1.08x at 768, but the smaller tiles keep the working set
#: small: on a 2-core Intel Xeon with AMX (2026-12-08), `sain decode` of a 4096x3072 photo
#: took 25.2 s at a peak of 1.56 GB with core 512 and 26.5 s at 1.84 GB with 768 (640: 24.4 s,
#: 1.82 GB); `sain encode` 35.7 s / 0.98 GB against 36.7 s / 1.32 GB, the same bytes.
#: (With the receptive bound of 80 LR px instead, core 512 recomputes 1.49x, 768 1.27x.)
DEFAULT_TILE = 512

Tile = int | str | None


@runtime_checkable
class Method(Protocol):
    """What :func:`roundtrip`, :func:`sain.evaluate.evaluate` and :mod:`sain.compare` run.

    Attributes:
        name: the name reports and thumbnails record (``"bicubic"``, ``"sain-x2-jpeg"``).
        kind: the report's ``kind`` column: ``"model"``, ``"bicubic"`` or ``"jpeg-hr"``.
        scale: how much smaller the sent image is (1 for ``jpeg-hr``).
    """

    name: str
    kind: str

    @property
    def scale(self) -> int: ...

    def downscale(self, hr: Tensor) -> Tensor:
        """(N, 3, H, W) in [0, 1] -> the 8-bit image to send, (N, 3, H/s, W/s), on the CPU."""

    def upscale(self, received: Tensor, seed: int | None = 0, quality: int | None = None) -> Tensor:
        """The decoded (N, 3, h, w) -> the restored 8-bit (N, 3, h*s, w*s) (``seed``: of the latent;
        ``quality``: the codec quality of ``received``, for quality-aware models)."""


def tile_core(tile: Tile, lr_pixels: int) -> int | None:
    """Tile core in LR pixels, or None for untiled processing.

    ``tile``: ``"auto"`` (:data:`DEFAULT_TILE` above :data:`AUTO_TILE_PIXELS` LR pixels),
    ``"off"``/``None``/``0``, ``"on"`` or a positive tile core in LR pixels.
    """
    if tile is None or tile is False or tile == "off" or tile == 0:
        return None
    if tile == "auto":
        return DEFAULT_TILE if lr_pixels > AUTO_TILE_PIXELS else None
    if tile is True or tile == "on":
        return DEFAULT_TILE
    if isinstance(tile, int | np.integer) and tile > 0:
        return int(tile)
    raise ValueError(f"tile must be 'auto', 'off', 'on' or a positive number of LR pixels, got {tile!r}")


def _prepare(x: Tensor, like: Tensor) -> Tensor:
    """``x`` on the model's device and dtype, channels-last (about 20% faster convolutions on CPU)."""
    return x.to(like.device, like.dtype).contiguous(memory_format=torch.channels_last)


class ModelMethod:
    """A rescaling network as a method, untiled or in overlapping tiles (:mod:`sain.tiling`).

    Args:
        model: the network (results come back on the CPU).
        tile: as :func:`tile_core`; ``None``: untiled (tiles give the same result up to
            float rounding).
        precision: ``fp32``, ``bf16``, ``fp16`` or ``auto`` (:mod:`sain.precision`): the
            dense blocks' arithmetic. ``auto`` restores in bf16 on CPUs where that is faster
            (:func:`sain.precision.cpu_prefers_bf16`), in fp16 on GPUs, and keeps the thumbnail
            (downscale) in fp32.
        device: move the model there first (``"cuda"``, ``"cpu"``, ...); ``None``: where it is.
    """

    kind = "model"

    def __init__(
        self,
        model: RescalingModel,
        tile: Tile = None,
        precision: str = "fp32",
        device: str | torch.device | None = None,
    ) -> None:
        self.model = model if device is None else model.to(device)
        self.tile = tile
        self.precision = check_precision(precision)
        self.name = model_name(model)

    @property
    def scale(self) -> int:
        return self.model.scale

    def to(self, device: str | torch.device) -> ModelMethod:
        self.model.to(device)
        return self

    def _autocast(self, precision: str, device: torch.device):
        return contextlib.nullcontext() if precision == "fp32" else inference_autocast(precision, device)

    @torch.no_grad()
    def downscale(self, hr: Tensor) -> Tensor:
        s = self.scale
        core = tile_core(self.tile, hr.shape[-2] * hr.shape[-1] // (s * s))
        if core is not None:
            return quantize_u8(tiled_downscale(self.model, hr, tile=core * s, precision=self.precision))
        p = next(self.model.parameters())
        with self._autocast(downscale_precision(self.precision), p.device):
            lr = self.model.downscale(_prepare(hr, p))
        return quantize_u8(lr.float().cpu())

    @torch.no_grad()
    def upscale(self, received: Tensor, seed: int | None = 0, quality: int | None = None) -> Tensor:
        core = tile_core(self.tile, received.shape[-2] * received.shape[-1])
        if core is not None:
            return quantize_u8(
                tiled_upscale(self.model, received, tile=core, seed=seed, precision=self.precision, quality=quality)
            )
        kw = {"quality": quality} if quality is not None and self.model.quality_aware else {}
        p = next(self.model.parameters())
        gen = None
        if seed is not None:
            gen = torch.Generator().manual_seed(seed)
        with self._autocast(self.precision, p.device):
            out = self.model.upscale(_prepare(received, p), generator=gen, **kw)
        return quantize_u8(out.float().cpu())

    def __repr__(self) -> str:
        return f"ModelMethod({self.name!r}, x{self.scale}, tile={self.tile!r}, precision={self.precision!r})"


class RefinedMethod(ModelMethod):
    """A model whose thumbnail is refined at the encoder (:mod:`sain.refine`, ``steps`` steps;
    JPEG only), named ``<model>+refine<steps>``; the decoder is the model's own."""

    def __init__(self, method: ModelMethod, steps: int) -> None:
        from .refine import check_refine_steps

        super().__init__(method.model, method.tile, method.precision)
        self.steps = check_refine_steps(steps)
        self.name = f"{method.name}+refine{steps}"

    def downscale(self, hr: Tensor) -> Tensor:
        from .refine import refine_lr

        lr = super().downscale(hr)
        p = next(self.model.parameters())
        return refine_lr(self.model, _prepare(hr, p), lr.to(p.device), self.steps, precision=self.precision).cpu()

    def __repr__(self) -> str:
        return f"RefinedMethod({self.name!r}, steps={self.steps})"


class BicubicMethod:
    """The paper's baseline: MATLAB-style bicubic down, 8 bits, codec, MATLAB-style bicubic up."""

    name = kind = "bicubic"

    def __init__(self, scale: int) -> None:
        self._scale = scale

    @property
    def scale(self) -> int:
        return self._scale

    @torch.no_grad()
    def downscale(self, hr: Tensor) -> Tensor:
        return quantize_u8(bicubic_down(hr, self._scale))

    @torch.no_grad()
    def upscale(self, received: Tensor, seed: int | None = 0, quality: int | None = None) -> Tensor:
        return quantize_u8(bicubic_up(received, self._scale))

    def __repr__(self) -> str:
        return f"BicubicMethod(x{self._scale})"


class HRCodecMethod:
    """``jpeg-hr``: no rescaling; the full-resolution image itself goes through the codec."""

    name = kind = "jpeg-hr"

    @property
    def scale(self) -> int:
        return 1

    @torch.no_grad()
    def downscale(self, hr: Tensor) -> Tensor:
        return quantize_u8(hr)

    @torch.no_grad()
    def upscale(self, received: Tensor, seed: int | None = 0, quality: int | None = None) -> Tensor:
        return quantize_u8(received)

    def __repr__(self) -> str:
        return "HRCodecMethod()"


#: The methods that are not networks, by name (:data:`sain.zoo.BASELINES`).
BASELINE_METHODS = {BicubicMethod.name: BicubicMethod, HRCodecMethod.name: HRCodecMethod}


def get_method(
    spec: str | os.PathLike | RescalingModel | Method | None,
    scale: int | None = None,
    tile: Tile = None,
    precision: str = "fp32",
    device: str | torch.device | None = None,
) -> Method:
    """A method from a name, a model or a method (returned as is).

    Args:
        spec: ``"bicubic"``, ``"jpeg-hr"``, a zoo name or weight file (:func:`sain.zoo.get_model`;
            ``None``: the default model), a :class:`~sain.models.RescalingModel` or a method.
        scale: the scale of ``bicubic`` (required for it, ignored otherwise).
        tile: tiling of a network, see :func:`tile_core`.
        precision, device: of a network, see :class:`ModelMethod`.

    Raises:
        CheckpointError: an unknown model name or a bad weight file (the message lists the
            known names). ValueError: ``bicubic`` without a scale.
    """
    if isinstance(spec, Method) and not isinstance(spec, RescalingModel):
        return spec
    if isinstance(spec, RescalingModel):
        return ModelMethod(spec, tile, precision, device)
    if spec is not None and str(spec) in BASELINE_METHODS:
        if str(spec) == BicubicMethod.name:
            if scale is None:
                raise ValueError("the bicubic baseline needs an explicit scale")
            return BicubicMethod(scale)
        return HRCodecMethod()
    return ModelMethod(get_model(spec), tile, precision, device)


def _as_method(model: RescalingModel | Method | None, scale: int | None) -> Method:
    if model is None:
        if scale is None:
            raise ValueError("the bicubic baseline needs an explicit scale")
        return BicubicMethod(scale)
    return get_method(model)


def downscale(model: RescalingModel | Method | None, hr: Tensor, scale: int | None = None) -> Tensor:
    """HR (N, 3, H, W) -> the 8-bit LR to send; ``model=None`` means MATLAB bicubic at ``scale``."""
    return _as_method(model, scale).downscale(hr)


def upscale(model: RescalingModel | Method | None, lr: Tensor, scale: int, seed: int | None = 0) -> Tensor:
    """Received LR (N, 3, h, w) -> restored 8-bit HR; ``model=None`` means MATLAB bicubic."""
    return _as_method(model, scale).upscale(lr, seed)


@dataclass
class RoundTrip:
    """Result of :func:`roundtrip` for a batch: all tensors in [0, 1], (N, 3, ., .)."""

    lr: Tensor  # the 8-bit LR that is compressed and sent
    received: Tensor  # the decoded LR after the codec
    restored: Tensor  # the restored HR, clamped to [0, 1] and rounded to 8 bits
    sizes: list[int]  # compressed bytes of each LR


@torch.no_grad()
def roundtrip(
    model: RescalingModel | Method | None,
    hr: Tensor,
    fmt: str = "jpeg",
    quality: int = 75,
    scale: int | None = None,
    seed: int | None = 0,
) -> RoundTrip:
    """Downscale, compress with a real codec, decode and upscale a batch of HR images.

    Args:
        model: a rescaling network, a :class:`Method`, or ``None`` for the bicubic baseline.
        hr: (N, 3, H, W) in [0, 1], H and W multiples of the scale.
        fmt, quality: the real codec and its quality (1..100).
        scale: required for the bicubic baseline; otherwise the method's.
        seed: seed of the latent sample (``None``: unseeded).
    """
    method = _as_method(model, scale)
    lr = method.downscale(hr)
    received, sizes = codec_roundtrip(lr, fmt, quality)
    restored = method.upscale(received, seed, quality=quality)
    return RoundTrip(lr=lr, received=received, restored=restored, sizes=sizes)
