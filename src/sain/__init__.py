"""sain: compression-aware image rescaling (SAIN, Yang et al., AAAI 2023).

    >>> import sain, torch
    >>> model = sain.SAIN(scale=2).eval()
    >>> hr = torch.rand(1, 3, 64, 64)
    >>> lr = model.downscale(hr)        # (1, 3, 32, 32): quantise + compress, then send
    >>> model.upscale(lr).shape
    torch.Size([1, 3, 64, 64])
"""
from .checkpoint import CheckpointError, load_checkpoint, save_weights
from .models import IRN, SAIN, RescalingModel

__version__ = "0.1.0"
__all__ = ["SAIN", "IRN", "RescalingModel", "load_checkpoint", "save_weights", "CheckpointError",
           "__version__"]
