"""Networks: SAIN (self-asymmetric) and the IRN baseline, with their building blocks."""
from .base import RescalingModel
from .coupling import EnhancedInvBlock, InvBlock
from .gmm import GaussianMixture
from .haar import HaarDownsampling
from .irn import IRN
from .sain import SAIN
from .subnet import DenseBlock

__all__ = ["RescalingModel", "SAIN", "IRN", "HaarDownsampling", "InvBlock", "EnhancedInvBlock",
           "DenseBlock", "GaussianMixture"]
