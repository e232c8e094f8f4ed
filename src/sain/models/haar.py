"""Fixed, invertible Haar wavelet transform (the first arrow: image -> sub-bands).

Per input channel every 2x2 block is mapped to four sub-bands with the filters

    band0 [[1, 1], [1, 1]]   (the 2x2 mean, after the division by 4)
    band1 [[1,-1], [1,-1]]   (horizontal detail)
    band2 [[1, 1], [-1,-1]]  (vertical detail)
    band3 [[1,-1], [-1, 1]]  (diagonal detail)

divided by 4. Output channels are band-major: ``[band0 of all C, band1 of all C, ...]``,
exactly as the reference IRN/SAIN code orders them, so the first C channels are the
low-pass image. The inverse is the transposed convolution with the undivided filters.

The reference computes a grouped convolution and then reorders the channels with
reshape/transpose; here the reordering is built into a dense (4C, C, 2, 2) weight (zero
off the diagonal, so the same sums), which keeps the tensor's memory format
(channels-last stays channels-last, with no transposing copies). The transform always
runs in its input's dtype, also under autocast: the trunk of the network stays in the
precision of the image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def haar_filters(channels: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """The (4*C, 1, 2, 2) grouped-convolution weight of the Haar transform (undivided)."""
    w = torch.ones(4, 1, 2, 2, dtype=dtype)
    w[1, 0, 0, 1] = w[1, 0, 1, 1] = -1
    w[2, 0, 1, 0] = w[2, 0, 1, 1] = -1
    w[3, 0, 1, 0] = w[3, 0, 0, 1] = -1
    return torch.cat([w] * channels, 0)


def haar_dense_filters(channels: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """The (4*C, C, 2, 2) dense weight with band-major outputs: row ``b*C + c`` applies
    band ``b``'s filter to channel ``c`` (undivided)."""
    bands = haar_filters(1, dtype)  # (4, 1, 2, 2)
    w = torch.zeros(4, channels, channels, 2, 2, dtype=dtype)
    for c in range(channels):
        w[:, c, c] = bands[:, 0]
    return w.reshape(4 * channels, channels, 2, 2)


class HaarDownsampling(nn.Module):
    """One Haar step: (N, C, H, W) -> (N, 4C, H/2, W/2), log|det J| = (numel/4) log(1/16).

    The filters are a non-persistent buffer: constants, never in the optimiser or a
    checkpoint.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.register_buffer("weight", haar_dense_filters(channels), persistent=False)

    def _w(self, x: Tensor) -> Tensor:
        w: Tensor = self.weight  # type: ignore[assignment]
        return w.to(dtype=x.dtype, device=x.device)

    def forward(self, x: Tensor, rev: bool = False) -> tuple[Tensor, Tensor]:
        """Forward (``rev=False``) or inverse transform.

        Returns:
            ``(out, logdet)`` with ``logdet`` of shape (N,) (negated for the inverse).
        """
        n, c, h, w = x.shape
        with torch.autocast(x.device.type, enabled=False):
            if not rev:
                if c != self.channels or h % 2 or w % 2:
                    raise ValueError(f"Haar expects (N, {self.channels}, even H, even W), got {tuple(x.shape)}")
                out = F.conv2d(x, self._w(x), stride=2) / 4.0
                sign = 1.0
            else:
                if c != 4 * self.channels:
                    raise ValueError(f"inverse Haar expects {4 * self.channels} channels, got {c}")
                out = F.conv_transpose2d(x, self._w(x), stride=2)
                sign = -1.0
        elems = c * h * w
        logdet = torch.full((n,), sign * elems / 4 * math.log(1 / 16), dtype=x.dtype, device=x.device)
        return out, logdet
