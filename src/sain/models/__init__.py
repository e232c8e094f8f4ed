"""Networks: SAIN (self-asymmetric) and the IRN baseline, with their building blocks.

Architectures are plug-ins: each model class registers itself by name with
:func:`register`, and everything that turns a name into a network (checkpoints, training
configs, the trainer, the zoo) looks it up with :func:`get_arch` / :func:`build_model`.
"""

from .base import RescalingModel
from .coupling import EnhancedInvBlock, InvBlock
from .gmm import GaussianMixture
from .haar import HaarDownsampling
from .irn import IRN
from .registry import ArchitectureError, build_model, get_arch, infer_arch, list_archs, register
from .sain import SAIN
from .subnet import DenseBlock

__all__ = [
    "RescalingModel",
    "SAIN",
    "IRN",
    "HaarDownsampling",
    "InvBlock",
    "EnhancedInvBlock",
    "DenseBlock",
    "GaussianMixture",
    "ArchitectureError",
    "register",
    "get_arch",
    "list_archs",
    "build_model",
    "infer_arch",
]
