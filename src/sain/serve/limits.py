"""Checks on an upload before any decoding: its type, its bytes (:class:`BodyLimit`, while
it arrives), its declared pixel count.

Only the image header is read (Pillow's ``Image.open`` does not decode pixels), so a
decompression bomb or a huge declared size is refused without allocating it.
"""

from __future__ import annotations

import io
import warnings

from fastapi.responses import JSONResponse
from PIL import Image, UnidentifiedImageError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_UPLOAD_MB",
    "BodyLimit",
    "LimitError",
    "check_image_header",
    "check_pixels",
    "send_error",
]

#: Default upload limit of ``sain serve`` (MiB).
DEFAULT_MAX_UPLOAD_MB = 20.0
#: Default pixel limit of ``sain serve`` (of the original photo, or of the restored one).
DEFAULT_MAX_PIXELS = 16_000_000


class LimitError(ValueError):
    """An upload the service refuses; ``status`` is the HTTP status (400, 413 or 415)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def check_pixels(width: int, height: int, max_pixels: int, what: str = "image") -> None:
    """LimitError 413 when ``width * height`` is above ``max_pixels``."""
    if width * height > max_pixels:
        raise LimitError(
            413, f"{what} is {width}x{height} = {width * height:,} pixels, above the limit of {max_pixels:,}"
        )


def check_image_header(data: bytes, name: str, max_pixels: int) -> tuple[str, int, int]:
    """``(Pillow format, width, height)`` from the header of an uploaded file.

    Raises:
        LimitError: 400 for an empty upload, 415 when it is not an image Pillow knows,
            413 above ``max_pixels`` (also for a declared size Pillow calls a bomb).
    """
    if not data:
        raise LimitError(400, f"cannot read image '{name}': empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt, (w, h) = str(img.format), img.size
    except Image.DecompressionBombError as e:
        raise LimitError(413, f"cannot read image '{name}': {' '.join(str(e).split())}") from None
    except UnidentifiedImageError:
        raise LimitError(415, f"cannot read image '{name}': not an image file of a supported type") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise LimitError(400, f"cannot read image '{name}': {' '.join(str(e).split()) or type(e).__name__}") from None
    check_pixels(w, h, max_pixels)
    return fmt, w, h


class _UploadTooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: 413 for a request body above the limit, before it is parsed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"upload is larger than the limit of {self.limit:,} bytes"
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await send_error(send, 413, message)
            return
        seen, started, exceeded = 0, False, False

        async def counted() -> Message:
            nonlocal seen, exceeded
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    exceeded = True
                    raise _UploadTooLarge
            return msg

        async def watched(msg: Message) -> None:
            nonlocal started
            if exceeded:  # the app answered the aborted body (e.g. "error parsing the body"): 413 instead
                if msg["type"] == "http.response.start" and not started:
                    started = True
                    await send_error(send, 413, message)
                return
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, counted, watched)
        except _UploadTooLarge:
            if not started:
                await send_error(send, 413, message)


async def send_error(send: Send, status: int, message: str) -> None:
    resp = JSONResponse({"error": message}, status_code=status)
    await send({"type": "http.response.start", "status": status, "headers": resp.raw_headers})
    await send({"type": "http.response.body", "body": resp.body})
