"""``sain serve``: the HTTP API and the web page (FastAPI on uvicorn, imported only here)."""

from __future__ import annotations

import argparse
import errno
import socket

from ..zoo import DEFAULT_MODEL
from .common import add_runtime, apply_runtime, tile

DESCRIPTION = """Serve SAIN over HTTP: an API and a web page comparing SAIN with bicubic at the same bytes.

Needs the 'serve' extra (pip install 'sain[serve]'). Endpoints: POST /v1/encode,
/v1/decode, /v1/compare; GET /v1/models, /healthz; the OpenAPI description at
/openapi.json (browsable at /docs); the page at /. A fixed pool of --workers model
workers takes the requests; up to --queue more wait, and one more gets 503 with
Retry-After. Uploads above --max-upload-mb or --max-pixels get 413 before decoding.

examples:
  sain serve                                   # http://127.0.0.1:8000/
  sain serve --port 8080 --workers 2 --token s3cret
  curl -F file=@photo.png http://127.0.0.1:8000/v1/encode -o photo.jpg

exit status: 0 after a clean stop (Ctrl-C), 2 bad usage, a missing extra, or an address that cannot be bound.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0: any free one, printed at start)")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"default model, loaded at start (default: {DEFAULT_MODEL})")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="model worker threads (default: 1)")
    p.add_argument("--queue", type=int, default=4, metavar="N", help="requests that may wait for a worker (default: 4)")
    p.add_argument("--token", help="require 'Authorization: Bearer TOKEN' on /v1/* (default: no token)")
    p.add_argument("--max-upload-mb", type=float, default=20.0, metavar="MB", help="upload limit (default: 20)")
    p.add_argument(
        "--max-pixels", type=int, default=16_000_000, metavar="N", help="pixel limit of a photo (default: 16000000)"
    )
    p.add_argument("--timeout", type=float, default=120.0, metavar="S", help="per-request time limit (default: 120)")
    p.add_argument(
        "--tile", type=tile, default="auto", metavar="auto|on|off|N", help="tiling, as in 'sain encode' (default: auto)"
    )
    add_runtime(p)


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError
    from ..zoo import get_model

    for name in ("workers", "max_pixels"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0..65535 (0: any free port), got {args.port}")
    if args.queue < 0 or args.max_upload_mb <= 0 or args.timeout <= 0:
        raise UsageError("--queue must be >= 0, --max-upload-mb and --timeout > 0")
    try:
        import uvicorn

        from ..serve.app import ServeConfig, create_app
    except ImportError as e:
        raise UsageError(f"sain serve needs the 'serve' extra: pip install 'sain[serve]' ({e})") from None
    device = apply_runtime(args)
    get_model(args.model)  # usage error (exit 2) before binding
    config = ServeConfig(
        model=args.model,
        workers=args.workers,
        queue=args.queue,
        token=args.token,
        max_upload_mb=args.max_upload_mb,
        max_pixels=args.max_pixels,
        timeout_s=args.timeout,
        tile=args.tile,
        precision=args.precision,
        device=device,
    )
    sock = bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    url_host = f"[{host}]" if ":" in host else host
    print(f"sain serve: http://{url_host}:{port}/ (API docs at /docs; Ctrl-C stops)", flush=True)
    server = uvicorn.Server(uvicorn.Config(create_app(config), log_level="warning"))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one), bound here rather than by
    uvicorn so that a bad address or a port in use is a one-line error (exit 2) before the
    server starts, and so that the printed address is the one really bound."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise OSError(f"cannot serve on {host!r}: not a known address ({e.strerror})") from None
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
    except OSError as e:
        sock.close()
        why = "already in use" if e.errno == errno.EADDRINUSE else e.strerror
        raise OSError(f"cannot serve on {host}:{port}: {why}") from None
    return sock
