"""Golden regression tests: the bundled models on a fixed crop of the sample photo.

CompressAI's habit: a tiny, fixed input, the expected numbers kept in
``tests/expected/golden_<model>.json``, compared with a tolerance. The numbers pin what a
user gets from the public pipeline (``sain.pipeline.roundtrip``: downscale, 8-bit LR, real
JPEG at QF 30/75/90, decode, upscale with latent seed 0):

* ``psnr_y``: PSNR on the Y channel of the restored crop vs the crop, ``crop_border`` =
  the scale (the SR protocol of ``sain.metrics``); tolerance ``PSNR_TOL`` dB, because the
  restored image goes through floating-point sums whose order depends on the CPU's
  instruction set (measured: up to 1e-4 dB between AVX-512, AVX2 and scalar kernels);
* ``bytes``: the size of the JPEG file of the LR, exact;
* ``lr_sha256``: SHA-256 of the 8-bit LR (``(H, W, 3)`` uint8, C order), exact. It was the
  same with ``ATEN_CPU_CAPABILITY=avx512/avx2/default`` and ``ONEDNN_MAX_CPU_ISA=AVX2``
  and 1 or 2 threads, so it is kept exact; the LR's mean is stored as well so that a
  mismatch says how far off the LR is (one rounding flip or a different network).

The file also records the SHA-256 of the weight file, so a retrained bundled model is
reported as such rather than as a regression. Regenerate on purpose with
``SAIN_REGEN_GOLDEN=1`` (see ``tests/_expected.py`` and CONTRIBUTING.md).
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import numpy as np
import PIL
import pytest
import torch
from PIL import Image, features

import sain
import sain.pipeline
from sain.metrics import psnr

import _expected

QUALITIES = (30, 75, 90)
CROP = {"top": 192, "left": 320, "size": 128}  # a textured patch of sain/data/sample.png
SEED = 0
PSNR_TOL = 1e-3
WEIGHT_FILES = {"sain-x2-jpeg": "sain_x2_jpeg.safetensors", "irn-x2": "irn_x2.safetensors"}


def _golden_name(model: str) -> str:
    return f"golden_{model.replace('-', '_')}.json"


def _weights_path(model: str) -> Path:
    """The bundled weight file of ``model`` (the zoo's path if it has one)."""
    entry = getattr(sain.zoo, "ZOO", {}).get(model)
    path = getattr(entry, "path", None)
    if path is not None and Path(path).is_file():
        return Path(path)
    return Path(str(resources.files("sain") / "weights" / WEIGHT_FILES[model]))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _crop() -> torch.Tensor:
    """The fixed crop as a (1, 3, S, S) float tensor in [0, 1] (read with PIL, not sain)."""
    with Image.open(resources.files("sain") / "data" / "sample.png") as im:
        arr = np.asarray(im.convert("RGB"))
    t, left, s = CROP["top"], CROP["left"], CROP["size"]
    patch = np.ascontiguousarray(arr[t : t + s, left : left + s])
    return torch.from_numpy(patch).permute(2, 0, 1).float().div(255).unsqueeze(0)


def _measure(model_name: str) -> dict:
    model = sain.load_model(model_name)
    hr = _crop()
    results = {}
    for q in QUALITIES:
        rt = sain.pipeline.roundtrip(model, hr, "jpeg", q, seed=SEED)
        lr_u8 = (rt.lr[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
        results[str(q)] = {
            "psnr_y": round(psnr(rt.restored[0], hr[0], crop_border=model.scale, y_channel=True), 6),
            "bytes": int(rt.sizes[0]),
            "lr_sha256": _sha256(lr_u8.tobytes()),
            "lr_mean": round(float(lr_u8.astype(np.float64).mean()), 6),
        }
    return {
        "model": model_name,
        "weights_sha256": _sha256(_weights_path(model_name).read_bytes()),
        "input": {"image": "sain/data/sample.png", **CROP},
        "pipeline": f"sain.pipeline.roundtrip(model, crop, 'jpeg', q, seed={SEED})",
        "metric": "psnr_y: sain.metrics.psnr(restored, crop, crop_border=scale, y_channel=True)",
        "results": results,
        "made_with": {
            "torch": torch.__version__,
            "pillow": PIL.__version__,
            "libjpeg_turbo": features.version("libjpeg_turbo"),
        },
    }


@pytest.mark.parametrize("model_name", list(WEIGHT_FILES))
def test_golden(model_name: str) -> None:
    got = _measure(model_name)
    name = _golden_name(model_name)
    if _expected.regenerating():
        _expected.write(name, got)
        return
    want = _expected.load(name)
    if got["weights_sha256"] != want["weights_sha256"]:
        pytest.fail(
            f"the bundled weights changed: regenerate with {_expected.REGEN_VAR}=1 "
            f"({model_name}: {_weights_path(model_name).name} has sha256 {got['weights_sha256'][:16]}..., "
            f"tests/expected/{name} was made with {want['weights_sha256'][:16]}...)"
        )
    problems = []
    for q in map(str, QUALITIES):
        g, w = got["results"][q], want["results"][q]
        if abs(g["psnr_y"] - w["psnr_y"]) > PSNR_TOL:
            problems.append(
                f"QF {q}: PSNR-Y {g['psnr_y']:.6f} dB, expected {w['psnr_y']:.6f} (tolerance {PSNR_TOL} dB)"
            )
        if g["bytes"] != w["bytes"]:
            problems.append(f"QF {q}: {g['bytes']} JPEG bytes, expected {w['bytes']}")
        if g["lr_sha256"] != w["lr_sha256"]:
            problems.append(
                f"QF {q}: the 8-bit LR differs (sha256 {g['lr_sha256'][:16]}..., expected "
                f"{w['lr_sha256'][:16]}...; mean {g['lr_mean']:.6f} vs {w['lr_mean']:.6f})"
            )
    if problems:
        made = want.get("made_with", {})
        pytest.fail(
            f"{model_name} on the golden crop no longer gives the stored outputs (same weights):\n  "
            + "\n  ".join(problems)
            + f"\n(stored with torch {made.get('torch')}, Pillow {made.get('pillow')}, libjpeg-turbo "
            f"{made.get('libjpeg_turbo')}; now torch {torch.__version__}, Pillow {PIL.__version__}, "
            f"libjpeg-turbo {features.version('libjpeg_turbo')}.) If the change is intended, "
            f"{_expected.REGEN_HINT}."
        )
