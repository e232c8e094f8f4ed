"""``sain serve``'s API (sain.serve) with FastAPI's test client: every endpoint, every error
status, and the same bytes out as the CLI for the same input and settings.

The photo is a 96x64 crop of the bundled sample (the parrot's eye), run untiled on the bundled sain-x2-jpeg.
"""

from __future__ import annotations

import io
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import zlib
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("multipart")

from fastapi.testclient import TestClient  # noqa: E402

from sain.cli import main  # noqa: E402
from sain.compare import SAMPLE_IMAGE  # noqa: E402
from sain.serve.app import ServeConfig, create_app  # noqa: E402
from sain.serve.pool import Busy, WorkerPool  # noqa: E402
from sain.thumbnail import read_info  # noqa: E402


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("photo") / "photo.png"
    with Image.open(SAMPLE_IMAGE) as im:
        im.crop((500, 150, 596, 214)).save(path)
    return path


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(ServeConfig(tile="off", workers=1))) as c:
        yield c


def upload(path_or_bytes, name: str = "photo.png", ctype: str = "image/png") -> dict:
    data = path_or_bytes.read_bytes() if isinstance(path_or_bytes, Path) else path_or_bytes
    return {"file": (name, data, ctype)}


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width x height`` (a decompression bomb's header) and no pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


# -- endpoints ----------------------------------------------------------------------------


def test_healthz_models_openapi_and_page(client):
    h = client.get("/healthz").json()
    assert h["status"] == "ok" and h["workers"] == 1 and h["busy"] == 0 and h["auth"] is False
    m = client.get("/v1/models").json()
    assert m["default"] == "sain-x2-jpeg" and "sain-x2-jpeg" in [e["name"] for e in m["models"]]
    assert "jpeg" in m["formats"] and m["max_pixels"] > 0
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/encode", "/v1/decode", "/v1/compare", "/v1/models", "/healthz"} <= set(paths)
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for name in ("app.js", "style.css"):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200
        assert "http://" not in r.text and "https://" not in r.text  # offline: nothing from elsewhere
    assert "http://" not in page.text and "https://" not in page.text
    assert client.get("/static/../app.py").status_code == 404


def test_encode_and_decode_give_the_cli_bytes(client, photo, tmp_path, capsys):
    r = client.post("/v1/encode", files=upload(photo), data={"quality": "50", "format": "jpeg"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.headers["x-sain-size"] == "96x64" and 'filename="photo.jpg"' in r.headers["content-disposition"]
    assert main(["encode", str(photo), "-o", str(tmp_path), "--quality", "50", "--tile", "off", "-q"]) == 0
    cli_thumb = (tmp_path / "photo.jpg").read_bytes()
    assert r.content == cli_thumb
    info = read_info(r.content)
    assert info is not None and (info.model, info.scale, info.width, info.height) == ("sain-x2-jpeg", 2, 96, 64)

    d = client.post("/v1/decode", files=upload(cli_thumb, "photo.jpg", "image/jpeg"))
    assert d.status_code == 200 and d.headers["content-type"] == "image/png"
    out = tmp_path / "restored"
    assert main(["decode", str(tmp_path / "photo.jpg"), "-o", str(out), "--tile", "off", "-q"]) == 0
    assert d.content == (out / "photo.png").read_bytes()
    with Image.open(io.BytesIO(d.content)) as im:
        assert im.size == (96, 64)


def test_decode_of_a_plain_jpeg_needs_a_scale(client):
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (120, 80, 40)).save(buf, "JPEG")
    plain = upload(buf.getvalue(), "plain.jpg", "image/jpeg")
    r = client.post("/v1/decode", files=plain)
    assert r.status_code == 400 and "has no sain metadata" in r.json()["error"]
    r = client.post("/v1/decode", files=plain, data={"scale": "2", "size": "79x59"})
    assert r.status_code == 200
    with Image.open(io.BytesIO(r.content)) as im:
        assert im.size == (79, 59)
    r = client.post("/v1/decode", files=plain, data={"scale": "4"})
    assert r.status_code == 400 and "x2, but scale 4" in r.json()["error"]


def test_decode_of_an_animated_upload_is_a_400_naming_it(client):
    frames = [Image.new("RGB", (20, 16), (v, 0, 0)) for v in (30, 120, 220)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=50)
    r = client.post("/v1/decode", files=upload(buf.getvalue(), "anim.gif", "image/gif"), data={"scale": "2"})
    error = r.json()["error"]
    assert r.status_code == 400 and "'anim.gif'" in error and "animated or multi-page (3 frames)" in error


def test_compare_returns_sizes_metrics_and_image_urls(client, photo):
    r = client.post("/v1/compare", files=upload(photo), data={"quality": "40"})
    assert r.status_code == 200
    j = r.json()
    assert (j["width"], j["height"], j["scale"], j["format"], j["quality"]) == (96, 64, 2, "jpeg", 40)
    assert j["bicubic"]["bytes"] <= j["sain"]["bytes"] < j["thumbnail_bytes"]  # same bytes; + metadata
    for m in (j["sain"], j["bicubic"]):
        assert 20 < m["psnr_y"] < 60 and 0 < m["ssim_y"] <= 1
    types = {"original": "image/png", "sain": "image/png", "bicubic": "image/png", "thumbnail": "image/jpeg"}
    for key, ctype in types.items():
        f = client.get(j["urls"][key])
        assert f.status_code == 200 and f.headers["content-type"] == ctype
        with Image.open(io.BytesIO(f.content)) as im:
            assert im.size == ((48, 32) if key == "thumbnail" else (96, 64))
    assert read_info(client.get(j["urls"]["thumbnail"]).content) is not None
    assert client.get(f"/v1/results/{j['id']}/nothing.png").status_code == 404


def test_temporary_files_are_removed(client, photo, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert client.post("/v1/encode", files=upload(photo)).status_code == 200
    assert client.post("/v1/compare", files=upload(photo)).status_code == 200
    assert client.post("/v1/encode", files=upload(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)).status_code >= 400
    assert list(tmp_path.iterdir()) == []


# -- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "files, data, status, message",
    [
        ({"file": ("a.png", b"", "image/png")}, {}, 400, "empty file"),
        ({"file": ("a.png", b"not an image at all", "image/png")}, {}, 415, "not an image file"),
        ({"file": ("a.txt", b"hello", "text/plain")}, {}, 415, "unsupported content type"),
        ("truncated", {}, 400, "truncated"),
        ("photo", {"quality": "0"}, 400, "quality 0 out of range 1..100"),
        ("photo", {"quality": "high"}, 400, "quality: "),
        ("photo", {"format": "gif"}, 400, "gif"),
        ("photo", {"model": "/etc/passwd"}, 400, "unknown model '/etc/passwd'"),
        (None, {"quality": "50"}, 400, "file: Field required"),
        ({"file": ("bomb.png", png_declaring(30000, 30000), "image/png")}, {}, 413, "cannot read image 'bomb.png'"),
        ({"file": ("big.png", png_declaring(5000, 4000), "image/png")}, {}, 413, "above the limit of 16,000,000"),
    ],
)
def test_errors_are_json_with_the_right_status(client, photo, files, data, status, message):
    if files == "photo":
        files = upload(photo)
    elif files == "truncated":
        files = upload(photo.read_bytes()[:600])
    r = client.post("/v1/encode", files=files, data=data)
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and message in body["error"] and "\n" not in body["error"]
    assert client.get("/healthz").json()["busy"] == 0  # and the server stays healthy


@pytest.mark.parametrize("endpoint", ["/v1/encode", "/v1/decode", "/v1/compare"])
def test_hostile_uploads_get_4xx_on_every_endpoint(client, photo, endpoint):
    corpus = [
        (("empty.png", b"", "image/png"), 400),
        (("cut.png", photo.read_bytes()[:600], "image/png"), 400),
        (("bomb.png", png_declaring(30000, 30000), "image/png"), 413),
        (("huge.png", png_declaring(65535, 65535), "image/png"), 413),
        (("photo.png", photo.read_bytes(), "text/html"), 415),
        (("notes.png", b"%PDF-1.4 not an image", "image/png"), 415),
    ]
    for part, status in corpus:
        r = client.post(endpoint, files={"file": part})
        assert r.status_code == status, (part[0], r.text)
        assert set(r.json()) == {"error"}
    h = client.get("/healthz").json()
    assert h["status"] == "ok" and h["busy"] == 0


def test_upload_and_pixel_limits_give_413(photo):
    app = create_app(ServeConfig(max_upload_mb=0.02, max_pixels=5000, preload=False, tile="off"))
    with TestClient(app) as c:
        r = c.post("/v1/encode", files=upload(b"\0" * 30_000, "big.png"))
        assert r.status_code == 413 and "larger than the limit of 20,971 bytes" in r.json()["error"]
        r = c.post("/v1/compare", files=upload(photo))
        assert r.status_code == 413 and "96x64 = 6,144 pixels" in r.json()["error"]
        # no Content-Length (a chunked body): counted while it arrives, 413 past the limit
        head = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
        chunks = (head if i == 0 else b"\0" * 4096 for i in range(11))
        r = c.post("/v1/encode", content=chunks, headers={"content-type": "multipart/form-data; boundary=x"})
        assert r.status_code == 413 and "larger than the limit" in r.json()["error"]
        small = c.app.state.pool.submit(lambda: None)  # the pool still works
        small.result(5)
        # a 48x32 thumbnail passes, but it restores 96x64 > 5000 pixels: refused before decoding
        thumb = Image.new("RGB", (48, 32))
        buf = io.BytesIO()
        thumb.save(buf, "JPEG")
        r = c.post("/v1/decode", files=upload(buf.getvalue(), "t.jpg", "image/jpeg"), data={"scale": "2"})
        assert r.status_code == 413 and "the restored image is 96x64" in r.json()["error"]


def test_full_queue_gives_503_with_retry_after_and_slow_requests_504(photo):
    app = create_app(ServeConfig(workers=1, queue=1, timeout_s=0.3, preload=False, tile="off"))
    gate = threading.Event()
    with TestClient(app) as c:
        pool = c.app.state.pool
        blocker = pool.submit(gate.wait, 30)  # the only worker is busy
        try:
            r = c.post("/v1/encode", files=upload(photo))  # waits in the queue past the time limit
            assert r.status_code == 504 and "limit of 0.3 s" in r.json()["error"]
            waiting = pool.submit(gate.wait, 30)  # the queue's one place is taken
            r = c.post("/v1/encode", files=upload(photo))
            assert r.status_code == 503 and r.headers["retry-after"] == "2" and "busy" in r.json()["error"]
            assert c.get("/healthz").json()["busy"] == 2  # healthz answers while the pool is full
        finally:
            gate.set()
        blocker.result(5)
        waiting.result(5)
        # the pool takes work again; a real encode (model load included) gets a real limit, since
        # 0.3 s is too short for it on a loaded 2-core machine
        c.app.state.config.timeout_s = 120.0
        assert c.post("/v1/encode", files=upload(photo)).status_code == 200
        assert c.get("/healthz").json()["busy"] == 0


def test_token_is_required_on_the_api_only(photo):
    with TestClient(create_app(ServeConfig(token="s3cret", preload=False))) as c:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            r = c.get("/v1/models", headers=headers)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer" and "token" in r.json()["error"]
        assert c.post("/v1/encode", files=upload(photo)).status_code == 401
        assert c.get("/v1/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/healthz").json()["auth"] is True
        assert c.get("/").status_code == 200


def test_worker_pool_is_bounded():
    pool = WorkerPool(workers=1, queue=1)
    gate = threading.Event()
    try:
        a, b = pool.submit(gate.wait, 10), pool.submit(gate.wait, 10)
        with pytest.raises(Busy, match="1 workers and 1 queued"):
            pool.submit(gate.wait, 10)
        assert pool.admitted == 2
        gate.set()
        a.result(5), b.result(5)
        assert pool.submit(lambda: 7).result(5) == 7
    finally:
        gate.set()
        pool.shutdown()
    with pytest.raises(ValueError):
        WorkerPool(workers=0)


# -- the command --------------------------------------------------------------------------


def test_serve_command_usage_and_lazy_import(capsys):
    assert main(["serve", "--workers", "0"]) == 2
    assert "--workers must be positive" in capsys.readouterr().err
    assert main(["serve", "--model", "no-such-model"]) == 2
    assert "unknown model 'no-such-model'" in capsys.readouterr().err
    code = "import sys, sain.cli; sain.cli.build_parser(); print('fastapi' in sys.modules, 'uvicorn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]  # only `sain serve` imports the web stack


def test_serve_command_address_errors_are_one_line(capsys):
    """A port out of range, an unknown host and a port in use: one line each, exit 2, before
    uvicorn starts (it used to print an OverflowError traceback for --port 99999)."""
    assert main(["serve", "--port", "99999"]) == 2
    assert "--port must be 0..65535" in capsys.readouterr().err
    assert main(["serve", "--host", "no-such-host.invalid"]) == 2
    err = capsys.readouterr().err
    assert "cannot serve on 'no-such-host.invalid': not a known address" in err and len(err.splitlines()) == 1
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"sain serve: error: cannot serve on 127.0.0.1:{port}: already in use"


def test_serve_bind_port_zero_gives_a_free_port():
    from sain.commands.serve import bind

    sock = bind("127.0.0.1", 0)
    try:
        host, port = sock.getsockname()[:2]
        assert host == "127.0.0.1" and 0 < port <= 65535
    finally:
        sock.close()
