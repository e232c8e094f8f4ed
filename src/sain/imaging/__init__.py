"""Image input/output and MATLAB-compatible bicubic resizing.

Images are RGB everywhere: ``(3, H, W)`` float tensors in [0, 1] inside the
package, ``(H, W, 3)`` uint8 arrays at the file boundary.
"""

from sain.imaging.io import (
    DEFAULT_MAX_PIXELS,
    ImageReadError,
    check_pixels,
    from_uint8,
    list_images,
    open_image,
    read_image,
    read_image_u8,
    to_uint8,
    write_image,
)
from sain.imaging.resize import bicubic_down, bicubic_up, imresize

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ImageReadError",
    "bicubic_down",
    "bicubic_up",
    "check_pixels",
    "from_uint8",
    "imresize",
    "list_images",
    "open_image",
    "read_image",
    "read_image_u8",
    "to_uint8",
    "write_image",
]
