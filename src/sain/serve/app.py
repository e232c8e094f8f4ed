"""The ``sain serve`` application: the HTTP API, its limits and the web page.

    POST /v1/encode   photo      -> thumbnail file (the bytes of ``sain encode``)
    POST /v1/decode   thumbnail  -> PNG (the bytes of ``sain decode``)
    POST /v1/compare  photo      -> JSON: SAIN vs bicubic at the same bytes, PSNR-Y / SSIM-Y, image URLs
    GET  /v1/results/{id}/{file} -> the images of a recent comparison
    GET  /v1/models, /healthz, /openapi.json, /docs, and the page at /

Errors are ``{"error": "<one line, as the CLI prints it>"}`` with 400 (bad input), 401
(missing token), 404, 413 (too large: checked on the bytes and on the declared pixel
count before any decoding), 415 (not an image), 503 + ``Retry-After`` (queue full) or
504 (over the per-request time limit).
"""

from __future__ import annotations

import asyncio
import hmac
import re
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..codecs import check_quality
from ..compare import roundtrip_image
from ..encoding import ENCODE_FORMATS, SUFFIXES, check_format, decode_image, encode_image, parse_size
from ..imaging import read_image, write_image
from ..pipeline import Tile
from ..thumbnail import read_info
from ..zoo import DEFAULT_MODEL, list_models
from .limits import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_UPLOAD_MB,
    BodyLimit,
    LimitError,
    check_image_header,
    check_pixels,
)
from .pool import Busy, Results, WorkerPool

__all__ = ["ServeConfig", "create_app"]

STATIC_DIR = Path(str(resources.files("sain") / "serve" / "static"))
_MEDIA_TYPES = {"jpeg": "image/jpeg", "webp": "image/webp", "avif": "image/avif", "png": "image/png"}
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class ServeConfig:
    """Settings of the service (the options of ``sain serve``)."""

    model: str = DEFAULT_MODEL  # the default model, loaded by every worker at start
    workers: int = 1
    queue: int = 4  # requests that may wait for a worker; one more gets 503
    token: str | None = None  # when set, /v1/* needs ``Authorization: Bearer <token>``
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
    max_pixels: int = DEFAULT_MAX_PIXELS
    timeout_s: float = 120.0  # per request, waiting included
    retry_after_s: int = 2
    results: int = 16  # comparisons kept for their image URLs (oldest dropped)
    tile: Tile = "auto"
    precision: str = "auto"
    device: str | None = None
    preload: bool = True  # workers load the default model when they start

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


def _one_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else e.__class__.__name__


def _png_bytes(img: Any) -> bytes:
    """An image as the PNG file ``write_image`` writes (the CLI's bytes), via a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="sain-serve-") as d:
        path = write_image(Path(d) / "out.png", img, format="png")
        return Path(path).read_bytes()


def _read_upload(data: bytes, name: str) -> Any:
    """The uploaded photo decoded by ``read_image`` (from a temporary file, removed after)."""
    with tempfile.TemporaryDirectory(prefix="sain-serve-") as d:
        path = Path(d) / name
        path.write_bytes(data)
        try:
            return read_image(path)
        except (ValueError, OSError) as e:
            raise LimitError(400, _one_line(e).replace(str(path), name)) from None


def create_app(config: ServeConfig | None = None) -> FastAPI:
    """The ASGI application of ``sain serve`` (run it with uvicorn, or test it with TestClient)."""
    cfg = config or ServeConfig()
    served = {e.name for e in list_models() if e.available} | {cfg.model}
    pool = WorkerPool(cfg.workers, cfg.queue, (cfg.model,) if cfg.preload else ())
    results = Results(cfg.results)
    started = time.time()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        pool.shutdown()

    app = FastAPI(
        lifespan=lifespan,
        title="sain",
        version=__version__,
        description="Compression-aware image rescaling (SAIN): thumbnails that survive JPEG/WebP/AVIF, "
        "and the full-resolution photo restored from them.",
    )
    app.state.pool = pool
    app.state.config = cfg
    app.add_middleware(BodyLimit, limit=cfg.max_upload_bytes)

    @app.exception_handler(LimitError)
    async def _limit_error(_r: Request, e: LimitError) -> JSONResponse:
        return JSONResponse({"error": str(e)}, status_code=e.status)

    @app.exception_handler(Busy)
    async def _busy(_r: Request, e: Busy) -> JSONResponse:
        return JSONResponse({"error": str(e)}, status_code=503, headers={"Retry-After": str(cfg.retry_after_s)})

    @app.exception_handler(RequestValidationError)
    async def _invalid(_r: Request, e: RequestValidationError) -> JSONResponse:
        errs = e.errors()
        first = errs[0] if errs else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid request')}"}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_r: Request, e: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(e.detail)}, status_code=e.status_code, headers=e.headers)

    @app.middleware("http")
    async def _auth(request: Request, call_next: Callable) -> Response:
        if cfg.token and request.url.path.startswith("/v1/"):
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {cfg.token}".encode()):
                return JSONResponse(
                    {"error": "missing or wrong token (send 'Authorization: Bearer <token>')"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        return await call_next(request)

    def check_model(name: str | None) -> str:
        key = name or cfg.model
        if key not in served:
            raise LimitError(400, f"unknown model {key!r}: not one of {', '.join(sorted(served))}")
        return key

    def check_upload(upload: UploadFile, data: bytes) -> tuple[str, int, int]:
        ctype = (upload.content_type or "").split(";")[0].strip().lower()
        name = _SAFE_NAME.sub("_", Path(upload.filename or "upload").name) or "upload"
        if ctype and not (ctype.startswith("image/") or ctype == "application/octet-stream"):
            raise LimitError(415, f"cannot read image '{name}': unsupported content type {ctype!r}")
        _fmt, w, h = check_image_header(data, name, cfg.max_pixels)
        return name, w, h

    def check_codec(fmt: str, quality: int) -> str:
        try:
            fmt = check_format(fmt)
            check_quality(quality)
        except ValueError as e:
            raise LimitError(400, _one_line(e)) from None
        return fmt

    async def run(fn: Callable[..., Any], *args: Any, name: str | None = None) -> Any:
        """``fn(*args)`` in the worker pool; its errors become one-line 400s, naming the
        upload ``name`` where the library says ``<bytes>``."""
        fut = pool.submit(fn, *args)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(fut), cfg.timeout_s)
        except TimeoutError:
            raise LimitError(504, f"request took longer than the limit of {cfg.timeout_s:g} s") from None
        except (ValueError, OSError, RuntimeError) as e:
            if isinstance(e, LimitError | Busy):
                raise
            msg = _one_line(e)
            raise LimitError(400, msg.replace("<bytes>", name) if name else msg) from None

    # -- the API --------------------------------------------------------------------------

    @app.get("/healthz", summary="Liveness and load")
    def healthz() -> dict:
        return {
            "status": "ok",
            "version": __version__,
            "workers": pool.workers,
            "queue": pool.queue,
            "busy": pool.admitted,
            "uptime_s": round(time.time() - started, 1),
            "auth": bool(cfg.token),
        }

    @app.get("/v1/models", summary="The models served, the formats and the limits")
    def models() -> dict:
        return {
            "default": cfg.model,
            "models": [
                {
                    "name": e.name,
                    "arch": e.arch,
                    "scale": e.scale,
                    "codec": e.codec,
                    "description": e.description,
                    "available": e.available,
                }
                for e in list_models()
                if e.name in served
            ],
            "formats": list(ENCODE_FORMATS),
            "max_upload_bytes": cfg.max_upload_bytes,
            "max_pixels": cfg.max_pixels,
        }

    def encode_job(data: bytes, name: str, model: str, fmt: str, quality: int) -> tuple[bytes, Any]:
        hr = _read_upload(data, name)
        return encode_image(hr, pool.model(model), fmt, quality, cfg.tile, cfg.precision, cfg.device)

    @app.post("/v1/encode", summary="Photo -> thumbnail (the bytes `sain encode` writes)")
    async def encode(
        file: Annotated[UploadFile, File(description="the photo (PNG, JPEG, ...)")],
        model: Annotated[str | None, Form(description="zoo name (default: the server's --model)")] = None,
        format: Annotated[str, Form(description="jpeg, webp or avif")] = "jpeg",
        quality: Annotated[int, Form(description="codec quality 1..100")] = 75,
    ) -> Response:
        data = await file.read()
        name, _w, _h = check_upload(file, data)
        key, fmt = check_model(model), check_codec(format, quality)
        thumb, info = await run(encode_job, data, name, key, fmt, quality)
        stem = Path(name).stem or "thumbnail"
        return Response(
            thumb,
            media_type=_MEDIA_TYPES[fmt],
            headers={
                "Content-Disposition": f'attachment; filename="{stem}.{SUFFIXES[fmt]}"',
                "X-Sain-Model": info.model,
                "X-Sain-Scale": str(info.scale),
                "X-Sain-Size": f"{info.width}x{info.height}",
            },
        )

    def decode_job(data: bytes, model: str, seed: int, scale: int | None, size: Any) -> bytes:
        hr = decode_image(data, pool.model(model), seed, scale, size, cfg.tile, cfg.precision, cfg.device)
        return _png_bytes(hr)

    @app.post("/v1/decode", summary="Thumbnail -> restored PNG (the bytes `sain decode` writes)")
    async def decode(
        file: Annotated[UploadFile, File(description="a thumbnail made by /v1/encode or `sain encode`")],
        model: Annotated[str | None, Form(description="overrides the metadata's model (foreign files)")] = None,
        scale: Annotated[int | None, Form(description="expected scale 2, 4 or 8 (for files without metadata)")] = None,
        size: Annotated[str | None, Form(description="WxH of the original (for files without metadata)")] = None,
        seed: Annotated[int, Form(description="seed of the latent sample")] = 0,
    ) -> Response:
        data = await file.read()
        name, w, h = check_upload(file, data)
        try:
            info = read_info(data)
            wh = parse_size(size) if size else None
        except ValueError as e:
            raise LimitError(400, _one_line(e).replace("<bytes>", name)) from None
        if model is None and info is None and scale is None:
            raise LimitError(
                400,
                f"{name} has no sain metadata (not made by 'sain encode'?); "
                "pass model and scale (or size) to decode it anyway",
            )
        if model is None and info is not None and info.model not in served:
            raise LimitError(400, f"{name} was made with model {info.model!r}, which is not served here; pass model")
        key = check_model(model or (info.model if info is not None else cfg.model))
        s = info.scale if info is not None else (scale or 2)
        out_w, out_h = wh or ((info.width, info.height) if info is not None else (w * s, h * s))
        check_pixels(out_w, out_h, cfg.max_pixels, "the restored image")
        png = await run(decode_job, data, key, seed, scale, wh, name=name)
        stem = Path(name).stem or "restored"
        return Response(
            png, media_type="image/png", headers={"Content-Disposition": f'attachment; filename="{stem}.png"'}
        )

    def compare_job(data: bytes, name: str, model: str, fmt: str, quality: int, seed: int) -> dict:
        hr = _read_upload(data, name)
        r = roundtrip_image(hr, pool.model(model), fmt, quality, seed, cfg.tile, False, cfg.precision, cfg.device)
        assert not isinstance(r, list)
        suffix, media = SUFFIXES[fmt], _MEDIA_TYPES[fmt]
        files = {
            "original.png": (_png_bytes(r.original), "image/png"),
            f"thumbnail.{suffix}": (r.thumbnail, media),
            "sain.png": (_png_bytes(r.sain.image), "image/png"),
            f"bicubic.{suffix}": (r.bicubic_lr, media),
            "bicubic.png": (_png_bytes(r.bicubic.image), "image/png"),
        }
        h, w = r.original.shape[-2:]

        def method(x: Any) -> dict:
            return {
                "method": x.method,
                "quality": x.quality,
                "bytes": x.bytes,
                "bpp": 8 * x.bytes / (w * h),
                "psnr_y": None if x.psnr_y != x.psnr_y else x.psnr_y,  # NaN (too small) -> null
                "ssim_y": None if x.ssim_y != x.ssim_y else x.ssim_y,
            }

        return {
            "files": files,
            "json": {
                "width": int(w),
                "height": int(h),
                "scale": r.scale,
                "format": fmt,
                "quality": r.quality,
                "thumbnail_bytes": len(r.thumbnail),
                "sain": method(r.sain),
                "bicubic": method(r.bicubic),
            },
            "suffix": suffix,
        }

    @app.post("/v1/compare", summary="SAIN vs bicubic at the same bytes, with PSNR-Y / SSIM-Y and image URLs")
    async def compare(
        file: Annotated[UploadFile, File(description="the photo")],
        model: Annotated[str | None, Form(description="zoo name (default: the server's --model)")] = None,
        format: Annotated[str, Form(description="jpeg, webp or avif")] = "jpeg",
        quality: Annotated[int, Form(description="codec quality 1..100 of the SAIN thumbnail")] = 75,
        seed: Annotated[int, Form(description="seed of the latent sample")] = 0,
    ) -> dict:
        data = await file.read()
        name, _w, _h = check_upload(file, data)
        key, fmt = check_model(model), check_codec(format, quality)
        out = await run(compare_job, data, name, key, fmt, quality, seed)
        rid = results.add(out["files"])
        base = f"/v1/results/{rid}"
        sx = out["suffix"]
        return {
            **out["json"],
            "model": key,
            "id": rid,
            "urls": {
                "original": f"{base}/original.png",
                "thumbnail": f"{base}/thumbnail.{sx}",
                "sain": f"{base}/sain.png",
                "bicubic_lr": f"{base}/bicubic.{sx}",
                "bicubic": f"{base}/bicubic.png",
            },
        }

    @app.get("/v1/results/{rid}/{filename}", summary="An image of a recent /v1/compare")
    def result_file(rid: str, filename: str) -> Response:
        item = results.get(rid, filename)
        if item is None:
            raise LimitError(404, f"no result {rid}/{filename} (only the last {cfg.results} comparisons are kept)")
        return Response(item[0], media_type=item[1], headers={"Cache-Control": "private, max-age=3600"})

    # -- the page -------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/static/{filename}", include_in_schema=False)
    def static(filename: str) -> FileResponse:
        path = STATIC_DIR / Path(filename).name
        if not path.is_file():
            raise LimitError(404, f"no file {filename}")
        return FileResponse(path)

    return app
