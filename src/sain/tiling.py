"""Running a rescaling network on overlapping tiles, so that large photos fit in memory.

    image ─split into cores of ``tile`` px, each grown by ``overlap`` px of context─> tiles
    tiles ─network, one at a time─> outputs ─keep each output's core, paste─> result

Every operation of SAIN and IRN is local: the Haar transform works on aligned s x s
blocks and every coupling subnet is a dense block of five 3x3 convolutions (radius 5 at
its resolution). A tile whose context reaches as far as the network's receptive field
therefore gives exactly the untiled output on its core; image borders are the same zero
padding in both cases. Each model computes that field from its structure
(``model.receptive_radius``) and the tiled functions use it as the default overlap, so tiled == untiled up
to floating-point summation order (measured in ``tests/test_tiling.py``: 0 in float64
with the reference convolution, about 1e-6 in float32).

For SAIN x2 (5 E-blocks + 3 V-blocks) the radius is 45 LR pixels (90 HR pixels) for the
downscale and 80 LR pixels for the upscale; for x4 (10 + 6) 95 and 160 LR pixels.

That radius is a bound, not what a trained network uses: the influence of a pixel dies
out long before it (measured on the bundled sain-x2-jpeg, tiles of 96 LR px on a Kodak
photo: an overlap of 16 LR px already changes no output by more than 6e-7, i.e. float32
rounding, against 80 for the bound). With the default 512-px tiles of a 12 MP decode the
bound makes the network compute 1.49x the image, a 24-px overlap 1.14x. So an overlap can
be *measured* for a given model (:func:`measure_overlap`: the smallest overlap whose tiled
result matches the exact one within a tolerance on a real photo), and a model that
carries one (``model.tile_overlap = {"down": LR px, "up": LR px}``: the bundled models,
from their zoo entry, measured with a margin and checked by ``tests/test_tiling.py``) is
tiled with it by default. Any other model (a weight file, a reference checkpoint) gets the
exact bound. ``overlap=`` overrides both.

The latent z of the upscale is drawn once for the whole image (seeded) and sliced per
tile; :func:`sample_latent` asks the model for it in chunks, bit-identical to
``model.sample_latent`` with a generator seeded the same way, without the mixture
sampler's per-element temporaries (about 25 floats per latent element) for the whole
image at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from .models import RescalingModel
from .models.base import cat_channels
from .precision import downscale_precision, inference_autocast

__all__ = [
    "default_overlap",
    "measure_overlap",
    "receptive_radius",
    "sample_latent",
    "tiled_downscale",
    "tiled_upscale",
]

#: Latent elements drawn per chunk by :func:`sample_latent` (a multiple of 16, which
#: keeps the chunked draws identical to one large draw of torch's CPU generator).
_CHUNK = 1 << 20


def receptive_radius(model: RescalingModel, direction: str) -> int:
    """How far (in HR pixels) an output pixel of the network can see, from its own block.

    The model computes it from its structure (:meth:`RescalingModel.receptive_radius`;
    for SAIN and IRN :func:`sain.models.receptive.chain_radius`).

    Args:
        model: a rescaling network.
        direction: ``"down"`` (HR -> the LR image to send) or ``"up"`` (LR + z -> HR).

    Returns:
        The radius in HR pixels. An output block depends only on input pixels within this
        distance of it, so a context margin of ``ceil(radius / s) * s`` HR pixels (or
        ``ceil(radius / s)`` LR pixels) makes tiling exact.
    """
    if direction not in ("down", "up"):
        raise ValueError(f"direction must be 'down' or 'up', got {direction!r}")
    return int(model.receptive_radius(direction))


def default_overlap(model: RescalingModel, direction: str) -> int:
    """The overlap (LR pixels) the tiled functions use when given none: the model's measured
    ``tile_overlap[direction]`` when it carries one (bundled models), else the exact
    receptive radius (:func:`receptive_radius`, rounded up to LR pixels); never more than
    the radius."""
    exact = _margin(receptive_radius(model, direction), model.scale)
    measured = (getattr(model, "tile_overlap", None) or {}).get(direction)
    return exact if measured is None else min(int(measured), exact)


#: Overlaps (LR pixels) that :func:`measure_overlap` tries, smallest first.
OVERLAP_CANDIDATES = (4, 8, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 160)


@torch.no_grad()
def measure_overlap(
    model: RescalingModel, hr: Tensor, direction: str, tol: float = 1e-5, core: int = 48, crop: int = 144
) -> int:
    """The smallest overlap (LR pixels, from :data:`OVERLAP_CANDIDATES`) at which tiling a
    real photo into cores of ``core`` LR pixels gives the untiled result within ``tol``
    (max absolute difference, values in [0, 1]; 1e-5 is 1/400 of an 8-bit level), in fp32.

    Measured on the central ``crop`` x ``crop`` LR pixels of ``hr`` (N, 3, H, W) (the whole
    image when smaller), tiled 3 x 3 with the default sizes, so every core has seams on
    each side. The exact receptive radius when no candidate below it is close enough.
    The upscale is measured on the model's own LR of that crop, quantised to 8 bits.
    """
    if direction not in ("down", "up"):
        raise ValueError(f"direction must be 'down' or 'up', got {direction!r}")
    s = model.scale
    _, _, h, w = hr.shape
    ch, cw = min(crop, h // s), min(crop, w // s)
    y0, x0 = (h // s - ch) // 2 * s, (w // s - cw) // 2 * s
    hr = hr[:, :, y0 : y0 + ch * s, x0 : x0 + cw * s].float()
    exact = _margin(receptive_radius(model, direction), s)
    whole = max(ch, cw)  # one tile: no seams
    if direction == "down":
        ref = tiled_downscale(model, hr, tile=whole * s, overlap=0)
        run = lambda m: tiled_downscale(model, hr, tile=core * s, overlap=m * s)  # noqa: E731
    else:
        lr = torch.round(tiled_downscale(model, hr, tile=whole * s, overlap=0).clamp(0, 1) * 255) / 255
        ref = tiled_upscale(model, lr, tile=whole, overlap=0, seed=0)
        run = lambda m: tiled_upscale(model, lr, tile=core, overlap=m, seed=0)  # noqa: E731
    for m in OVERLAP_CANDIDATES:
        if m >= exact:
            break
        if float((run(m) - ref).abs().max()) <= tol:
            return m
    return exact


def _margin(radius: int, scale: int) -> int:
    """The smallest number of LR pixels covering ``radius`` HR pixels."""
    return -(-radius // scale)


def _spans(length: int, core: int) -> Iterator[tuple[int, int]]:
    for start in range(0, length, core):
        yield start, min(start + core, length)


def _check_tiling(name: str, value: int, scale: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value % scale:
        raise ValueError(f"{name} must be a multiple of the scale {scale}, got {value}")
    return value


@torch.no_grad()
def tiled_downscale(
    model: RescalingModel, hr: Tensor, tile: int = 1024, overlap: int | None = None, precision: str = "fp32"
) -> Tensor:
    """``model.downscale`` computed tile by tile.

    Args:
        model: a rescaling network (its device and dtype are used for the tiles).
        hr: (N, 3, H, W) in [0, 1], H and W multiples of the scale.
        tile: side of the core each tile contributes, in HR pixels (a multiple of the scale).
        overlap: context added on every side of a core, in HR pixels (a multiple of the
            scale); ``None`` = :func:`default_overlap` (the model's measured overlap, else
            the receptive radius rounded up, which makes the result equal to the untiled
            one up to float rounding). Smaller values are faster and only approximately
            equal near tile seams.
        precision: of the dense blocks (:func:`sain.precision.downscale_precision`: ``auto``
            keeps the thumbnail in fp32).

    Returns:
        The LR image (N, 3, H/s, W/s), not quantised, float32 on the CPU.
    """
    s = model.scale
    model._check_hr(hr)
    if overlap is None:
        overlap = default_overlap(model, "down") * s
    _check_tiling("tile", tile, s, s)
    _check_tiling("overlap", overlap, s, 0)
    p = next(model.parameters())
    n, _, h, w = hr.shape
    out = torch.empty(n, 3, h // s, w // s, dtype=torch.float32)
    for y0, y1 in _spans(h, tile):
        for x0, x1 in _spans(w, tile):
            ty0, tx0 = max(0, y0 - overlap), max(0, x0 - overlap)
            ty1, tx1 = min(h, y1 + overlap), min(w, x1 + overlap)
            piece = hr[:, :, ty0:ty1, tx0:tx1].to(p.device, p.dtype).contiguous(memory_format=torch.channels_last)
            with inference_autocast(downscale_precision(precision), p.device):
                lr = model.downscale(piece).float().cpu()
            oy, ox = (y0 - ty0) // s, (x0 - tx0) // s
            out[:, :, y0 // s : y1 // s, x0 // s : x1 // s] = lr[
                :, :, oy : oy + (y1 - y0) // s, ox : ox + (x1 - x0) // s
            ]
    return out


@torch.no_grad()
def sample_latent(
    model: RescalingModel, lr: Tensor, seed: int | None = 0, generator: torch.Generator | None = None
) -> Tensor:
    """The latent z for upscaling ``lr``, as ``model.sample_latent(lr, generator)`` draws it.

    Asks the model for the sample in chunks of :data:`_CHUNK` elements (SAIN's Gaussian
    mixture then keeps its temporaries small, with the same random stream: bit-identical).
    The result is float32 on the CPU.

    Args:
        model: the network.
        lr: (N, 3, h, w); only its shape is used.
        seed: seeds a fresh CPU generator (ignored when ``generator`` is given;
            ``None`` and no generator: torch's global generator).
        generator: a CPU generator to draw from.
    """
    if generator is None and seed is not None:
        generator = torch.Generator().manual_seed(int(seed))
    return model.sample_latent(lr.float().cpu(), generator, chunk=_CHUNK).float()


@torch.no_grad()
def tiled_upscale(
    model: RescalingModel,
    lr: Tensor,
    tile: int = 512,
    overlap: int | None = None,
    seed: int | None = 0,
    z: Tensor | None = None,
    precision: str = "fp32",
    quality: int | None = None,
) -> Tensor:
    """``model.upscale`` computed tile by tile, with one latent for the whole image.

    Args:
        model: a rescaling network.
        lr: received LR (N, 3, h, w) in [0, 1].
        tile: side of the core each tile contributes, in LR pixels.
        overlap: context on every side of a core, in LR pixels; ``None`` =
            :func:`default_overlap` (the model's measured overlap, else the receptive
            radius: exact up to float rounding).
        seed: seed of the latent sample (see :func:`sample_latent`); unused if ``z`` is given.
        z: the latent (N, 3*(s^2-1), h, w) to use instead of drawing one.
        precision: ``fp32``, ``bf16``, ``fp16`` or ``auto`` for the dense blocks
            (:func:`sain.precision.inference_autocast`).
        quality: the codec quality of ``lr``, given to quality-aware models.

    Returns:
        The restored HR (N, 3, h*s, w*s), not clamped, float32 on the CPU. With the same
        seed it equals :func:`sain.pipeline.upscale` before its rounding to 8 bits.
    """
    s = model.scale
    model._check_lr(lr)
    if overlap is None:
        overlap = default_overlap(model, "up")
    _check_tiling("tile", tile, 1, 1)
    _check_tiling("overlap", overlap, 1, 0)
    kw: dict[str, Any] = {"quality": quality} if quality is not None and model.quality_aware else {}
    n, _, h, w = lr.shape
    if z is None:
        z = sample_latent(model, lr, seed)
    if tuple(z.shape) != (n, model.latent_channels, h, w):
        raise ValueError(f"z must have shape {(n, model.latent_channels, h, w)}, got {tuple(z.shape)}")
    p = next(model.parameters())
    out = torch.empty(n, 3, h * s, w * s, dtype=torch.float32)
    for y0, y1 in _spans(h, tile):
        for x0, x1 in _spans(w, tile):
            ty0, tx0 = max(0, y0 - overlap), max(0, x0 - overlap)
            ty1, tx1 = min(h, y1 + overlap), min(w, x1 + overlap)
            y = cat_channels(
                lr[:, :, ty0:ty1, tx0:tx1].to(p.device, p.dtype),
                z[:, :, ty0:ty1, tx0:tx1].to(p.device, p.dtype),
                memory_format=torch.channels_last,
            )
            with inference_autocast(precision, p.device):
                hr = model.inverse(y, **kw)[0].float().cpu()
            oy, ox = (y0 - ty0) * s, (x0 - tx0) * s
            out[:, :, y0 * s : y1 * s, x0 * s : x1 * s] = hr[:, :, oy : oy + (y1 - y0) * s, ox : ox + (x1 - x0) * s]
    return out
