"""Encoder-side refinement of the thumbnail (sain.refine): the decoder, unchanged, restores
more from the refined LR through the *real* JPEG codec; tiles, errors, encode / eval / CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from sain import cli
from sain.codecs import codec_roundtrip
from sain.compare import SAMPLE_IMAGE
from sain.encoding import encode_image
from sain.evaluate import evaluate
from sain.imaging import read_image
from sain.metrics import psnr
from sain.pipeline import ModelMethod
from sain.refine import _spans, refine_lr, refine_total
from sain.zoo import get_model


@pytest.fixture(scope="module")
def model():
    return get_model("sain-x2-jpeg").eval()


@pytest.fixture(scope="module")
def crop():
    return (
        read_image(SAMPLE_IMAGE)[:, 192:288, 96:192].unsqueeze(0).contiguous()
    )  # 96 x 96, restored at ~28.7 dB at QF 75


def _restored_psnr(model, lr, hr, q):
    m = ModelMethod(model, precision="fp32")
    received = codec_roundtrip(lr, "jpeg", q)[0]
    return psnr(m.upscale(received, 0)[0].clamp(0, 1), hr[0], 2, y_channel=True)


def test_zero_steps_is_the_network_lr_in_8_bits(model, crop):
    lr = ModelMethod(model).downscale(crop)
    assert torch.equal(refine_lr(model, crop, lr, steps=0), lr)


@pytest.mark.parametrize("tile", [None, 32])
def test_refined_thumbnail_restores_better_through_the_real_codec(model, crop, tile):
    lr = ModelMethod(model).downscale(crop)
    calls = []
    refined = refine_lr(model, crop, lr, steps=12, qualities=[75], tile=tile, precision="fp32", progress=calls.append)
    assert len(calls) == refine_total(lr.shape, 12, tile) == (12 if tile is None else 12 * 4)
    assert refined.shape == lr.shape
    assert torch.equal(refined, torch.round(refined * 255) / 255)  # 8-bit values
    before, after = _restored_psnr(model, lr, crop, 75), _restored_psnr(model, refined, crop, 75)
    assert after > before + 0.05, (before, after)
    # still the network's thumbnail to the eye: a small change of its pixels
    assert psnr(refined[0], lr[0], 0) > 38


def test_a_smooth_image_is_never_made_worse(model):
    x = torch.linspace(0, 1, 64)
    smooth = torch.stack([x[None, :].expand(64, 64), x[:, None].expand(64, 64), 0.5 + 0 * x[None, :].expand(64, 64)])
    hr = smooth.unsqueeze(0).contiguous()
    lr = ModelMethod(model).downscale(hr)
    refined = refine_lr(model, hr, lr, steps=6, qualities=[90], rate=0.05)  # a rate far too large
    assert _restored_psnr(model, refined, hr, 90) >= _restored_psnr(model, lr, hr, 90) - 0.01


def test_refine_works_under_inference_mode(model, crop):
    lr = ModelMethod(model).downscale(crop)
    with torch.inference_mode():
        refined = refine_lr(model, crop, lr, steps=2, qualities=[75], rate=4e-3)
    assert not torch.equal(refined, lr)
    assert all(not p.requires_grad for p in model.parameters()) or all(p.requires_grad for p in model.parameters())


def test_tiles_cover_the_image_once():
    spans = _spans(100, 32, 16)
    assert [(c0, c1) for _, _, c0, c1 in spans] == [(0, 32), (32, 64), (64, 96), (96, 100)]
    assert all(w0 == max(0, c0 - 16) and w1 == min(100, c1 + 16) for w0, w1, c0, c1 in spans)
    assert all(c0 % 16 == 0 for _, _, c0, _ in spans)  # JPEG 4:2:0 blocks line up with the codec's


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"steps": -1}, "0..10000"),
        ({"steps": True}, "0..10000"),
        ({"steps": 2, "qualities": [0]}, "1..100"),
        ({"steps": 2, "qualities": []}, "1..100"),
        ({"steps": 2, "rate": 0.0}, "positive"),
    ],
)
def test_bad_arguments(model, crop, kw, match):
    lr = ModelMethod(model).downscale(crop)
    with pytest.raises(ValueError, match=match):
        refine_lr(model, crop, lr, **kw)


def test_mismatched_sizes(model, crop):
    with pytest.raises(ValueError, match="do not match"):
        refine_lr(model, crop, torch.zeros(1, 3, 40, 48), steps=1)


def test_encode_image_refines_jpeg_only(model, crop):
    plain, _ = encode_image(crop[0], model, "jpeg", 75)
    refined, info = encode_image(crop[0], model, "jpeg", 75, refine=3)
    assert plain != refined and info.quality == 75
    with pytest.raises(ValueError, match="JPEG thumbnails only"):
        encode_image(crop[0], model, "webp", 75, refine=3)


def test_eval_adds_refined_rows(tmp_path, model, crop):
    d = tmp_path / "One"
    d.mkdir()
    Image.fromarray((crop[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(d / "a.png")
    # 20 steps: below that the gain on a 96 x 96 crop is within +-0.01 dB of noise (+0.036 at 20)
    res = evaluate([model], [d], qualities=[75], progress=False, refine=20, same_bytes=False)
    names = [r["model"] for r in res.records]
    assert len(names) == 2 and names[1] == names[0] + "+refine20"
    assert res.records[1]["psnr_y"] > res.records[0]["psnr_y"]
    with pytest.raises(ValueError, match="JPEG thumbnails only"):
        evaluate([model], [d], fmt="webp", qualities=[75], progress=False, refine=2)


def test_cli_refine(tmp_path, crop, capsys):
    src = tmp_path / "p.png"
    Image.fromarray((crop[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(src)
    assert cli.main(["encode", str(src), "-o", str(tmp_path / "t.jpg"), "--refine", "2", "-q"]) == 0
    assert (tmp_path / "t.jpg").stat().st_size > 0
    for bad, msg in (
        (["-o", str(tmp_path / "t.webp"), "--refine", "2"], "JPEG thumbnails only"),
        (["-o", str(tmp_path / "u.jpg"), "--refine", "x"], "0..10000"),
    ):
        try:
            rc = cli.main(["encode", str(src), *bad])
        except SystemExit as e:  # argparse's own usage errors
            rc = e.code
        assert rc == 2
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err
        assert not (tmp_path / "t.webp").exists() and not (tmp_path / "u.jpg").exists()
