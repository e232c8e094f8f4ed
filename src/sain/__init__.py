"""sain: compression-aware image rescaling (SAIN, Yang et al., AAAI 2023).

>>> import sain, torch
>>> model = sain.SAIN(scale=2).eval()
>>> hr = torch.rand(1, 3, 64, 64)
>>> lr = model.downscale(hr)        # (1, 3, 32, 32): quantise + compress, then send
>>> model.upscale(lr).shape
torch.Size([1, 3, 64, 64])
"""

from .api import (
    ThumbnailInfo,
    decode_file,
    decode_image,
    encode_file,
    encode_image,
    inspect_thumbnail,
    read_info,
    roundtrip_file,
    roundtrip_image,
)
from .checkpoint import CheckpointError, load_checkpoint, save_weights
from .models import IRN, SAIN, RescalingModel
from .tiling import tiled_downscale, tiled_upscale
from .zoo import list_models, load_model

__version__ = "0.1.0"  # the one version source: pyproject.toml reads it (statically, no import)
__all__ = [
    "SAIN",
    "IRN",
    "RescalingModel",
    "load_checkpoint",
    "save_weights",
    "CheckpointError",
    "load_model",
    "list_models",
    "encode_file",
    "decode_file",
    "encode_image",
    "decode_image",
    "roundtrip_file",
    "roundtrip_image",
    "read_info",
    "inspect_thumbnail",
    "ThumbnailInfo",
    "tiled_downscale",
    "tiled_upscale",
    "__version__",
]
