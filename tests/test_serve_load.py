"""A bounded load test of ``sain serve`` on loopback (slow: ``pytest -m slow``).

16 concurrent clients post a 96x64 photo to /v1/encode for ``SAIN_LOAD_SECONDS`` (default
60) against ``sain serve --workers 2 --queue 4`` in a subprocess: every response is a
thumbnail (200) or a JSON 503 with Retry-After, none lost or malformed; the server answers
/healthz throughout and after; its resident memory stays under ``MEMORY_BOUND``.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from sain.compare import SAMPLE_IMAGE  # noqa: E402
from sain.thumbnail import read_info  # noqa: E402

pytestmark = pytest.mark.slow

CLIENTS = 16
MEMORY_BOUND = 2 * 1024**3  # bytes of RSS: one process, two workers, each with its model copy


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def test_sixteen_clients_against_two_workers(tmp_path):
    seconds = float(os.environ.get("SAIN_LOAD_SECONDS", "60"))
    buf = io.BytesIO()
    with Image.open(SAMPLE_IMAGE) as im:
        im.crop((500, 150, 596, 214)).save(buf, "PNG")
    photo = buf.getvalue()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "sain", "serve", "--port", str(port), "--workers", "2", "--queue", "4"]
    proc = subprocess.Popen([*cmd, "--tile", "off", "--threads", "1"], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)

        stop = time.monotonic() + seconds
        counts = {200: 0, 503: 0}
        problems: list[str] = []
        health: list[float] = []
        peak = [0]
        lock = threading.Lock()

        def client() -> None:
            with httpx.Client(timeout=60) as c:
                while time.monotonic() < stop:
                    try:
                        r = c.post(base + "/v1/encode", files={"file": ("p.png", photo, "image/png")})
                    except httpx.HTTPError as e:
                        with lock:
                            problems.append(f"lost: {e!r}")
                        continue
                    ok = (r.status_code == 200 and read_info(r.content) is not None) or (
                        r.status_code == 503 and "retry-after" in r.headers and "error" in r.json()
                    )
                    with lock:
                        if ok:
                            counts[r.status_code] += 1
                        else:
                            problems.append(f"{r.status_code}: {r.text[:100]}")
                    if r.status_code == 503:
                        time.sleep(0.05)

        def monitor() -> None:
            while time.monotonic() < stop:
                t0 = time.monotonic()
                r = httpx.get(base + "/healthz", timeout=5)
                health.append(time.monotonic() - t0)
                if r.status_code != 200:
                    problems.append(f"healthz {r.status_code}")
                peak[0] = max(peak[0], _rss(proc.pid))
                time.sleep(0.5)

        threads = [threading.Thread(target=client) for _ in range(CLIENTS)] + [threading.Thread(target=monitor)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        after = httpx.get(base + "/healthz", timeout=5).json()
        print(
            f"\n{seconds:g} s: {counts[200]} x 200, {counts[503]} x 503, healthz max {max(health):.3f} s, "
            f"peak RSS {peak[0] / 2**20:.0f} MiB"
        )
        assert not problems, problems[:5]
        assert counts[200] > 0 and counts[503] > 0  # the queue filled up, and work got done
        assert max(health) < 5 and after["status"] == "ok" and after["busy"] == 0
        assert peak[0] < MEMORY_BOUND
    finally:
        proc.terminate()
        proc.wait(20)
