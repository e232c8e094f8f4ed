"""A 24-megapixel photo through encode and decode with bounded memory (slow: `make test-slow`)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


@pytest.mark.slow
def test_24_megapixel_photo_round_trip_with_bounded_memory(tmp_path):
    script = textwrap.dedent(f"""
        import resource, numpy as np, torch
        from PIL import Image
        import sain
        torch.manual_seed(0)
        h, w = 4001, 6003                      # 24 MP, odd sizes
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        img = (127 + 60 * np.sin(xx / 37) * np.cos(yy / 23))[..., None] + np.array([0, 30, -30])
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save("{tmp_path}/big.png")
        model = sain.SAIN(2, e_blocks=1, v_blocks=1)
        for p in model.parameters():
            p.data.add_(0.01 * torch.randn_like(p))
        sain.save_weights(model, "{tmp_path}/tiny.safetensors")
        sain.encode_file("{tmp_path}/big.png", "{tmp_path}/big.jpg", model="{tmp_path}/tiny.safetensors")
        sain.decode_file("{tmp_path}/big.jpg", "{tmp_path}/big_restored.png", model="{tmp_path}/tiny.safetensors")
        with Image.open("{tmp_path}/big_restored.png") as im:
            print("size", im.size)
        print("maxrss_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in out.stdout.strip().splitlines())
    assert lines["size"] == "(6003, 4001)"
    # the image itself is 24 MP x 3 channels; untiled float32 activations of one dense block
    # at LR resolution alone would take > 3 GB
    assert int(lines["maxrss_mb"]) < 3000, lines["maxrss_mb"]
