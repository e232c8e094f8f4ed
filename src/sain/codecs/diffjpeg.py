"""Differentiable JPEG surrogate (the codec ``D`` of the SAIN training loss).

A baseline JPEG encode/decode written with differentiable tensor operations, the
only non-differentiable step (rounding the quantised DCT coefficients) replaced by
a smooth Fourier-series surrogate::

    x [0, 1] --*255--> RGB --JFIF--> Y, Cb, Cr --2x2 mean--> Cb, Cr at 1/2 size (4:2:0)
        --replicate pad to 8x8 blocks, -128--> 8x8 DCT-II --/ Q_table(quality)--> r(.)
        --* Q_table--> 8x8 inverse DCT --+128--> chroma x2 upsampling --JFIF^-1--> RGB --/255, clamp--> x_hat

with ``r(v) = v - sum_{n=1..9} (-1)^(n+1) sin(2 pi n v) / (pi n)`` (the truncated
Fourier series of ``v - round(v)`` subtracted from ``v``: a smooth staircase), and
the libjpeg standard luminance / chrominance tables scaled by ``quality`` exactly
as libjpeg's ``jpeg_quality_scaling`` does (baseline, clamped to [1, 255]).

The chroma is upsampled bilinearly (``align_corners=False``), which is the
triangle filter of libjpeg's default "fancy upsampling" used by Pillow's decoder;
nearest-neighbour replication is available for comparison.
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .registry import check_quality

__all__ = [
    "CHROMINANCE_TABLE",
    "DiffJPEG",
    "LUMINANCE_TABLE",
    "dct_matrix",
    "diff_jpeg",
    "quality_tables",
    "smooth_round",
]

#: libjpeg / ITU-T T.81 Annex K standard luminance quantisation table (row-major).
LUMINANCE_TABLE: tuple[tuple[int, ...], ...] = (
    (16, 11, 10, 16, 24, 40, 51, 61),
    (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77),
    (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101),
    (72, 92, 95, 98, 112, 100, 103, 99),
)

#: libjpeg / ITU-T T.81 Annex K standard chrominance quantisation table (row-major).
CHROMINANCE_TABLE: tuple[tuple[int, ...], ...] = (
    (17, 18, 24, 47, 99, 99, 99, 99),
    (18, 21, 26, 66, 99, 99, 99, 99),
    (24, 26, 56, 99, 99, 99, 99, 99),
    (47, 66, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99),
)

# JPEG full-range (JFIF) colour conversion, values in 0..255.
_RGB_TO_YCBCR = (
    (0.299, 0.587, 0.114),
    (-0.168736, -0.331264, 0.5),
    (0.5, -0.418688, -0.081312),
)
_YCBCR_TO_RGB = (
    (1.0, 0.0, 1.402),
    (1.0, -0.344136, -0.714136),
    (1.0, 1.772, 0.0),
)
_UPSAMPLING = ("bilinear", "nearest")
_SURROGATE_TERMS = 9


def dct_matrix(dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> Tensor:
    """The orthonormal 8-point DCT-II matrix ``D``; a block's 2-D DCT is ``D @ B @ D.T``.

    Args:
        dtype: Floating-point dtype of the result.
        device: Device of the result.

    Returns:
        Tensor of shape (8, 8) with ``D[k, n] = c_k cos((2n + 1) k pi / 16)``,
        ``c_0 = sqrt(1/8)``, ``c_k = sqrt(2/8)``; ``D @ D.T == I``.
    """
    k = torch.arange(8, dtype=torch.float64).unsqueeze(1)
    n = torch.arange(8, dtype=torch.float64).unsqueeze(0)
    d = torch.cos((2.0 * n + 1.0) * k * math.pi / 16.0) * math.sqrt(2.0 / 8.0)
    d[0] = d[0] / math.sqrt(2.0)
    return d.to(dtype=dtype).to(device=device)


def smooth_round(x: Tensor, terms: int = _SURROGATE_TERMS) -> Tensor:
    """Smooth surrogate of ``round``: ``x - sum_{n=1..terms} (-1)^(n+1) sin(2 pi n x) / (pi n)``.

    Args:
        x: Any floating-point tensor.
        terms: Number of Fourier terms (9 in SAIN).

    Shape:
        - x: (*)
        - output: (*)

    Returns:
        A differentiable approximation of ``torch.round(x)``; exact at integers
        and half-integers.
    """
    residual = torch.zeros_like(x)
    for n in range(1, terms + 1):
        sign = 1.0 if n % 2 == 1 else -1.0
        residual = residual + (sign / (math.pi * n)) * torch.sin((2.0 * math.pi * n) * x)
    return x - residual


def _quality_tensor(quality: float | Tensor, n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Validate ``quality`` and return it as a (N,) tensor."""
    if isinstance(quality, Tensor):
        if quality.dim() == 0:
            q = quality.reshape(1).expand(n)
        elif quality.dim() == 1 and quality.shape[0] == n:
            q = quality
        else:
            raise ValueError(f"a quality tensor must be a scalar or have shape ({n},), got {tuple(quality.shape)}")
        q = q.detach().to(dtype=dtype, device=device)
        if q.numel() and not (torch.isfinite(q).all() and (q >= 1).all() and (q <= 100).all()):
            raise ValueError("quality values must be in 1..100")
        return q
    if isinstance(quality, bool) or not isinstance(quality, numbers.Real):
        raise TypeError(f"quality must be a number or a tensor, got {type(quality).__name__}")
    return torch.full((n,), check_quality(quality, "jpeg", integer=False), dtype=dtype, device=device)


def quality_tables(
    quality: float | Tensor,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor]:
    """libjpeg's standard tables scaled by quality (``jpeg_quality_scaling``, baseline).

    ``scale = floor(5000 / q)`` if ``q < 50`` else ``200 - 2 q`` (percent), and
    ``table = clamp(floor((std * scale + 50) / 100), 1, 255)``; bit-exact libjpeg
    for integer qualities. Not differentiable in ``quality``.

    Args:
        quality: A number in 1..100, or a (N,) tensor of per-sample qualities.
        dtype: Floating-point dtype of the tables.
        device: Device of the tables.

    Returns:
        ``(luminance, chrominance)``, each of shape (N, 8, 8) (N = 1 for a number).
    """
    n = quality.numel() if isinstance(quality, Tensor) else 1
    device = (
        torch.device(device)
        if device is not None
        else (quality.device if isinstance(quality, Tensor) else torch.device("cpu"))
    )
    q = _quality_tensor(quality.reshape(-1) if isinstance(quality, Tensor) else quality, n, dtype, device)
    scale = torch.where(q < 50, torch.floor(5000.0 / q), 200.0 - 2.0 * q).view(-1, 1, 1)
    tables = []
    for std in (LUMINANCE_TABLE, CHROMINANCE_TABLE):
        base = torch.tensor(std, dtype=dtype, device=device)
        tables.append(torch.floor((base * scale + 50.0) / 100.0).clamp(1.0, 255.0))
    return tables[0], tables[1]


def _to_blocks(plane: Tensor) -> Tensor:
    """(N, C, H, W) with H, W multiples of 8 -> (N, C, H/8, W/8, 8, 8)."""
    n, c, h, w = plane.shape
    return plane.reshape(n, c, h // 8, 8, w // 8, 8).permute(0, 1, 2, 4, 3, 5)


def _from_blocks(blocks: Tensor) -> Tensor:
    """(N, C, H/8, W/8, 8, 8) -> (N, C, H, W)."""
    n, c, bh, bw, _, _ = blocks.shape
    return blocks.permute(0, 1, 2, 4, 3, 5).reshape(n, c, bh * 8, bw * 8)


def _jpeg_plane(plane: Tensor, table: Tensor, dct: Tensor) -> Tensor:
    """Level shift, DCT, smooth quantisation, dequantisation and inverse DCT of planes.

    plane: (N, C, H, W) in 0..255 with H, W multiples of 8; table: (N, 8, 8).
    """
    blocks = _to_blocks(plane - 128.0)
    coeffs = dct @ blocks @ dct.transpose(0, 1)
    t = table.view(table.shape[0], 1, 1, 1, 8, 8)
    coeffs = smooth_round(coeffs / t) * t
    return _from_blocks(dct.transpose(0, 1) @ coeffs @ dct) + 128.0


def diff_jpeg(
    x: Tensor,
    quality: float | Tensor = 75,
    chroma_upsampling: str = "bilinear",
) -> Tensor:
    """Differentiable JPEG compression and decompression (4:2:0, libjpeg tables).

    Args:
        x: RGB images, floating point (float32 or float64), nominally in [0, 1].
        quality: JPEG quality in 1..100: a number, or a tensor of shape (N,)
            giving one quality per image (a 0-dim tensor is broadcast). Not
            differentiated.
        chroma_upsampling: ``"bilinear"`` (default; libjpeg's fancy upsampling,
            closest to Pillow's decoder) or ``"nearest"`` (2x2 replication).

    Shape:
        - x: (N, 3, H, W), any H, W >= 1
        - output: (N, 3, H, W)

    Returns:
        The JPEG-like reconstruction in [0, 1], same dtype and device as ``x``.
        The final clamp passes the gradient inside [0, 1]. ``x`` is not modified.

    Raises:
        TypeError: ``x`` is not a floating-point tensor, or ``quality`` is not a
            number or tensor.
        ValueError: bad shape, quality outside 1..100 or unknown upsampling.

    Example:
        >>> x = torch.rand(2, 3, 20, 30, requires_grad=True)
        >>> y = diff_jpeg(x, quality=torch.tensor([30.0, 90.0]))
        >>> y.shape
        torch.Size([2, 3, 20, 30])
        >>> y.sum().backward(); x.grad.shape
        torch.Size([2, 3, 20, 30])
    """
    if not isinstance(x, Tensor) or not torch.is_floating_point(x):
        raise TypeError("x must be a floating-point torch.Tensor")
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"x must have shape (N, 3, H, W), got {tuple(x.shape)}")
    n, _, h, w = x.shape
    if h < 1 or w < 1:
        raise ValueError(f"x must have H, W >= 1, got {tuple(x.shape)}")
    if chroma_upsampling not in _UPSAMPLING:
        raise ValueError(f"chroma_upsampling must be one of {_UPSAMPLING}, got {chroma_upsampling!r}")
    dtype, device = x.dtype, x.device
    q = _quality_tensor(quality, n, dtype, device)
    luma_table, chroma_table = quality_tables(q, dtype=dtype, device=device)
    dct = dct_matrix(dtype, device)

    # Replicate-pad to whole 16x16 MCUs so the half-size chroma is whole 8x8 blocks.
    pad_h, pad_w = (-h) % 16, (-w) % 16
    rgb = x * 255.0
    if pad_h or pad_w:
        rgb = F.pad(rgb, (0, pad_w, 0, pad_h), mode="replicate")

    to_ycc = torch.tensor(_RGB_TO_YCBCR, dtype=dtype, device=device)
    offset = torch.tensor([0.0, 128.0, 128.0], dtype=dtype, device=device).view(1, 3, 1, 1)
    ycc = torch.einsum("ij,njhw->nihw", to_ycc, rgb) + offset

    luma = _jpeg_plane(ycc[:, :1], luma_table, dct)
    chroma = F.avg_pool2d(ycc[:, 1:], kernel_size=2, stride=2)
    chroma = _jpeg_plane(chroma, chroma_table, dct)
    if chroma_upsampling == "bilinear":
        chroma = F.interpolate(chroma, scale_factor=2.0, mode="bilinear", align_corners=False)
    else:
        chroma = chroma.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)

    to_rgb = torch.tensor(_YCBCR_TO_RGB, dtype=dtype, device=device)
    ycc = torch.cat([luma, chroma], dim=1) - offset
    rgb = torch.einsum("ij,njhw->nihw", to_rgb, ycc)
    return (rgb[:, :, :h, :w] / 255.0).clamp(0.0, 1.0)


class DiffJPEG(nn.Module):
    """Differentiable JPEG surrogate as a module (no parameters), see :func:`diff_jpeg`.

    Args:
        quality: Default JPEG quality in 1..100 (75 in SAIN training).
        chroma_upsampling: ``"bilinear"`` (default) or ``"nearest"``.

    Shape:
        - input: (N, 3, H, W), float in [0, 1]
        - output: (N, 3, H, W), float in [0, 1]

    Example:
        >>> jpeg = DiffJPEG(quality=75)
        >>> jpeg(torch.rand(1, 3, 16, 16)).shape
        torch.Size([1, 3, 16, 16])
    """

    def __init__(self, quality: float = 75, chroma_upsampling: str = "bilinear") -> None:
        super().__init__()
        _quality_tensor(quality, 1, torch.float64, torch.device("cpu"))  # validates
        if chroma_upsampling not in _UPSAMPLING:
            raise ValueError(f"chroma_upsampling must be one of {_UPSAMPLING}, got {chroma_upsampling!r}")
        self.quality = float(quality)
        self.chroma_upsampling = chroma_upsampling

    def forward(self, x: Tensor, quality: float | Tensor | None = None) -> Tensor:
        """Compress and decompress ``x``; ``quality`` overrides the default (number or (N,) tensor)."""
        return diff_jpeg(x, self.quality if quality is None else quality, self.chroma_upsampling)

    def extra_repr(self) -> str:
        return f"quality={self.quality:g}, chroma_upsampling={self.chroma_upsampling!r}"
