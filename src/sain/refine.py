"""Encoder-side refinement of the thumbnail: spend encode time so that the decoder restores more.

The encoder has what the decoder lacks, the full-resolution photo. After the network's
downscale, :func:`refine_lr` adjusts the LR itself by gradient descent so that the
*unchanged* decoder, fed the LR after JPEG compression, gets closer to the photo::

    LR ─Q (8 bits)─> differentiable JPEG @ q ─> model.upscale (latent seed of the decode) ─> HR'
    loss = mean over the steps of log MSE(HR', HR)       (q cycles through ``qualities``)

* The thumbnail stays a normal image and decodes with any SAIN decoder of that model: only
  its pixel values move (by well under one JPEG quantisation step; the refined LR is
  typically 45-46 dB PSNR from the network's).
* The loss is the *log* of the MSE: each quality's error counts by its relative change, so
  the low qualities (whose errors are largest) do not buy their gain with the high ones
  (an L1 loss did: -0.2 dB at QF 90 on Set14's zebra).
* The qualities cycle so that one thumbnail serves every later compression (the default,
  every 10 from 30 to 90, spans the protocol's range: a quality left out of the cycle can
  lose, as QF 80 did under 30/50/70/90); the file is then written at the quality asked.
* Adam with a cosine-decayed rate (default 1e-3 per step, in [0, 1] pixel units; 2e-3 could
  lose at QF 90: MODELS.md "Encoder-side refinement"); the
  rounding to 8 bits is straight-through with no gradient where it clamps
  (:func:`sain.codecs.quantize`), the JPEG the project's differentiable one (4:2:0 blocks
  aligned with the real codec's, so tiles start on 16-pixel LR boundaries).
* Large images are refined tile by tile (``tile`` LR pixels per side plus the decoder's
  tiling overlap; the loss counts the tile's core only, the margin is held fixed), in
  raster order, so each tile sees its already-refined neighbours.
* A tile keeps its refined values only if their loss summed over the qualities is below the
  network's LR's (a smooth tile, already restored above 45 dB, can get worse from steps of
  this size): refinement never makes a thumbnail worse by its own measure.

Only JPEG has a differentiable surrogate here, so only JPEG thumbnails are refined.
Cost: a forward and a backward pass of the decoder per step (40 steps of a 0.28 MP photo:
about 30 s on one core of an AMD EPYC Zen 5).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from .codecs.diffjpeg import diff_jpeg
from .codecs.quantize import quantize, quantize_u8
from .models.base import RescalingModel
from .precision import inference_autocast, resolve_precision
from .tiling import _spans as tiling_spans
from .tiling import default_overlap

#: Default qualities the refinement cycles through.
REFINE_QUALITIES = (30, 40, 50, 60, 70, 80, 90)
#: Default rate of the refinement's Adam (pixel units in [0, 1]).
REFINE_RATE = 1e-3
#: Default tile core of a refinement in LR pixels (a multiple of 16).
REFINE_TILE = 256
#: The JPEG MCU of 4:2:0: tiles start on multiples of it so their blocks are the codec's.
_ALIGN = 16


def check_refine_steps(steps: int) -> int:
    """``steps`` as an int in 0..10000, else ``ValueError``."""
    if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= 10000:
        raise ValueError(f"refine steps must be an integer in 0..10000, got {steps!r}")
    return steps


def check_refine_format(fmt: str) -> None:
    """``ValueError`` unless ``fmt`` is JPEG, the one codec with a differentiable surrogate."""
    if fmt != "jpeg":
        raise ValueError(f"refine works on JPEG thumbnails only (it simulates the JPEG codec), not {fmt}")


def _margin(model: RescalingModel) -> int:
    """The tile margin in LR pixels: the decoder's tiling overlap (measured for bundled
    models, :func:`sain.tiling.default_overlap`), rounded up to the MCU."""
    return _ALIGN * math.ceil(default_overlap(model, "up") / _ALIGN)


def _spans(n: int, core: int, margin: int) -> list[tuple[int, int, int, int]]:
    """Per tile along one axis: (window start, window end, core start, core end)."""
    return [(max(0, c0 - margin), min(n, c1 + margin), c0, c1) for c0, c1 in tiling_spans(n, core)]


def _core(tile: int | None, h: int, w: int) -> int:
    """The tile core in LR pixels: ``tile`` rounded up to the MCU, or the whole image."""
    return max(h, w) if tile is None else _ALIGN * math.ceil(max(1, int(tile)) / _ALIGN)


def refine_lr(
    model: RescalingModel,
    hr: Tensor,
    lr: Tensor,
    steps: int = 40,
    qualities: Sequence[int] = REFINE_QUALITIES,
    rate: float = REFINE_RATE,
    seed: int | None = 0,
    precision: str = "auto",
    tile: int | None = REFINE_TILE,
    progress: Callable[[int], None] | None = None,
) -> Tensor:
    """The refined 8-bit LR of ``hr`` (module docstring), starting from the network's ``lr``.

    Args:
        model: the rescaling model whose decoder will restore the thumbnail.
        hr: (1, 3, H, W) in [0, 1], H and W multiples of the scale (the padded photo).
        lr: (1, 3, H/s, W/s), the network's LR (8-bit values or not).
        steps: gradient steps per tile (0: ``lr`` quantised, unchanged).
        qualities: JPEG qualities the steps cycle through (1..100 each).
        rate: Adam's initial rate, decayed to 0 by a cosine over the steps.
        seed: the latent seed the decoder will use (``sain decode``'s default 0).
        precision: of the decoder's passes (``auto``: as ``sain decode``).
        tile: tile core in LR pixels (rounded up to a multiple of 16), ``None`` for one tile.
        progress: called with 1 after each step of each tile.

    Returns:
        (1, 3, H/s, W/s) on ``lr``'s device, values ``k / 255``.
    """
    with torch.inference_mode(False), torch.enable_grad():
        return _refine(model, hr, lr, check_refine_steps(steps), qualities, rate, seed, precision, tile, progress)


def _refine(model, hr, lr, steps, qualities, rate, seed, precision, tile, progress) -> Tensor:
    qualities = [int(q) for q in qualities]
    if not qualities or any(not 1 <= q <= 100 for q in qualities):
        raise ValueError(f"refine qualities must be in 1..100, got {qualities}")
    if not (rate > 0 and math.isfinite(rate)):
        raise ValueError(f"refine rate must be positive, got {rate}")
    s = model.scale
    if hr.dim() != 4 or hr.shape[0] != 1 or lr.shape[-2] * s != hr.shape[-2] or lr.shape[-1] * s != hr.shape[-1]:
        raise ValueError(f"refine: HR {tuple(hr.shape)} and LR {tuple(lr.shape)} do not match at x{s}")
    out = quantize_u8(lr.detach().float().clone())
    if steps == 0:
        return out
    p = next(model.parameters())
    dev = p.device
    prec = resolve_precision(precision, dev)
    hr = hr.to(device=dev, dtype=torch.float32).clone()  # a normal tensor even from inference mode
    cur = out.to(dev).clone()
    h, w = cur.shape[-2:]
    core = _core(tile, h, w)
    margin = _margin(model)
    was_training = model.training
    model.eval()
    req = [q.requires_grad for q in model.parameters()]
    for q in model.parameters():
        q.requires_grad_(False)
    try:
        for y0, y1, cy0, cy1 in _spans(h, core, margin):
            for x0, x1, cx0, cx1 in _spans(w, core, margin):
                window = cur[..., y0:y1, x0:x1]
                inner = (..., slice(cy0 - y0, cy1 - y0), slice(cx0 - x0, cx1 - x0))
                tile_loss = _TileLoss(model, window, inner, hr[..., s * cy0 : s * cy1, s * cx0 : s * cx1], seed, prec)
                v = window[inner].clone().requires_grad_(True)
                start = v.detach().clone()
                opt = torch.optim.Adam([v], lr=rate)
                for i in range(steps):
                    loss = tile_loss(v, qualities[i % len(qualities)])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    for g in opt.param_groups:
                        g["lr"] = rate * 0.5 * (1 + math.cos(math.pi * (i + 1) / steps))
                    if progress is not None:
                        progress(1)
                best = quantize_u8(v.detach())
                # never worse than the network's LR, by the loss itself
                if tile_loss.total(best, qualities) < tile_loss.total(start, qualities):
                    cur[..., cy0:cy1, cx0:cx1] = best
    finally:
        for q, r in zip(model.parameters(), req, strict=True):
            q.requires_grad_(r)
        model.train(was_training)
    return cur.to(lr.device)


class _TileLoss:
    """log MSE of one tile's restored core, the tile's core LR values given (the margin fixed)."""

    def __init__(
        self, model: RescalingModel, window: Tensor, inner: tuple[Any, slice, slice], target: Tensor, seed, prec: str
    ):
        s = model.scale
        self.model, self.window, self.inner, self.target, self.seed, self.prec = (
            model,
            window,
            inner,
            target,
            seed,
            prec,
        )
        _, ys, xs = inner
        self.hr_inner = (..., slice(s * ys.start, s * ys.stop), slice(s * xs.start, s * xs.stop))

    def __call__(self, values: Tensor, q: int) -> Tensor:
        x = self.window.clone()
        x[self.inner] = values
        received = diff_jpeg(quantize(x, clamp_grad=True), q)
        dev = x.device
        gen = None if self.seed is None else torch.Generator(device=dev).manual_seed(self.seed)
        kw = {"quality": q} if self.model.quality_aware else {}
        with inference_autocast(self.prec, dev):
            restored = self.model.upscale(received, generator=gen, **kw)
        return torch.log(((restored.float()[self.hr_inner] - self.target) ** 2).mean().clamp_min(1e-12))

    def total(self, values: Tensor, qualities: Sequence[int]) -> float:
        with torch.no_grad():
            return sum(float(self(values, q)) for q in dict.fromkeys(qualities))


def refine_total(lr_shape: Sequence[int], steps: int, tile: int | None = REFINE_TILE) -> int:
    """How many steps :func:`refine_lr` takes for an LR of ``lr_shape`` (for a progress bar)."""
    h, w = int(lr_shape[-2]), int(lr_shape[-1])
    core = _core(tile, h, w)
    return steps * math.ceil(h / core) * math.ceil(w / core)


def refine_with_progress(
    model: RescalingModel, hr: Tensor, lr: Tensor, steps: int, precision: str = "auto", progress: bool = False
) -> Tensor:
    """:func:`refine_lr` with the defaults and, with ``progress``, a tqdm bar on stderr."""
    from tqdm.auto import tqdm

    with tqdm(
        total=refine_total(lr.shape, steps), desc="refine", unit="step", disable=not progress, leave=False
    ) as bar:
        return refine_lr(model, hr, lr, steps, precision=precision, progress=bar.update)
