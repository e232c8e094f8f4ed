"""The learned function inside every coupling: a 5-convolution dense block.

    x ─conv1─lrelu─┐
    [x,o1] ─conv2─lrelu─┐
    [x,o1,o2] ─conv3─lrelu─┐
    [x,o1,o2,o3] ─conv4─lrelu─┐
    [x,o1,o2,o3,o4] ─conv5─> out

3x3 convolutions, growth 32, LeakyReLU(0.2). Initialisation as the reference: Xavier
normal scaled by 0.1 for conv1-4, zeros for conv5, so a fresh coupling is the identity.
Parameter names (``conv1..conv5``) match the reference checkpoints.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class DenseBlock(nn.Module):
    """Dense block subnet ``(N, c_in, h, w) -> (N, c_out, h, w)``."""

    def __init__(self, c_in: int, c_out: int, growth: int = 32):
        super().__init__()
        self.c_in, self.c_out, self.growth = c_in, c_out, growth
        self.conv1 = nn.Conv2d(c_in, growth, 3, 1, 1)
        self.conv2 = nn.Conv2d(c_in + growth, growth, 3, 1, 1)
        self.conv3 = nn.Conv2d(c_in + 2 * growth, growth, 3, 1, 1)
        self.conv4 = nn.Conv2d(c_in + 3 * growth, growth, 3, 1, 1)
        self.conv5 = nn.Conv2d(c_in + 4 * growth, c_out, 3, 1, 1)
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            nn.init.xavier_normal_(conv.weight)
            conv.weight.data.mul_(0.1)
            nn.init.zeros_(conv.bias)
        nn.init.zeros_(self.conv5.weight)
        nn.init.zeros_(self.conv5.bias)

    def forward(self, x: Tensor) -> Tensor:
        o1 = F.leaky_relu(self.conv1(x), 0.2)
        o2 = F.leaky_relu(self.conv2(torch.cat((x, o1), 1)), 0.2)
        o3 = F.leaky_relu(self.conv3(torch.cat((x, o1, o2), 1)), 0.2)
        o4 = F.leaky_relu(self.conv4(torch.cat((x, o1, o2, o3), 1)), 0.2)
        return self.conv5(torch.cat((x, o1, o2, o3, o4), 1))
