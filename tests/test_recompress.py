"""``sain eval --recompress Q``: a second party re-encodes the thumbnail; quality-aware models
are told the final quality (``Method.upscale(..., quality=)``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from sain import cli
from sain.evaluate import evaluate
from sain.models.sain_qf import SAINQF


@pytest.fixture()
def images(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "Toy"
    d.mkdir()
    for i in range(2):
        coarse = rng.uniform(0, 255, (6, 6, 3)).astype(np.uint8)
        Image.fromarray(coarse).resize((48, 48), Image.BICUBIC).save(d / f"{i}.png")
    return d


def test_recompress_lowers_the_received_quality_and_is_recorded(images):
    plain = evaluate(["bicubic"], [images], qualities=[90], scale=2, progress=False)
    again = evaluate(["bicubic"], [images], qualities=[90], scale=2, progress=False, recompress=30)
    assert again.records[0]["recompress"] == 30 and plain.records[0]["recompress"] is None
    assert again.records[0]["psnr_y"] < plain.records[0]["psnr_y"] - 0.2
    assert again.records[0]["bytes"] == plain.records[0]["bytes"]  # the first encoding's size
    with pytest.raises(ValueError, match="1..100"):
        evaluate(["bicubic"], [images], qualities=[90], scale=2, progress=False, recompress=0)


def test_quality_aware_models_restore_at_the_final_quality(images, monkeypatch):
    torch.manual_seed(0)
    model = SAINQF(2, e_blocks=1, v_blocks=1).eval()
    seen = []
    real = SAINQF.upscale

    def spy(self, lr, generator=None, quality=None, **kw):
        seen.append(quality)
        return real(self, lr, generator, quality=quality, **kw)

    monkeypatch.setattr(SAINQF, "upscale", spy)
    evaluate([model], [images], qualities=[90], progress=False, recompress=50)
    assert seen and set(seen) == {50}
    seen.clear()
    evaluate([model], [images], qualities=[70], progress=False)
    assert set(seen) == {70}


def test_cli_recompress(images, tmp_path, capsys):
    assert (
        cli.main(
            [
                "eval",
                "--model",
                "bicubic",
                "--scale",
                "2",
                "--data",
                str(images),
                "--quality",
                "90",
                "--recompress",
                "40",
                "--out",
                str(tmp_path / "r"),
                "--no-progress",
            ]
        )
        == 0
    )
    assert (tmp_path / "r" / "results.json").read_text().count('"recompress": 40') >= 1
    md = (tmp_path / "r" / "results.md").read_text()
    # the tables say which two encodes the column is, and the protocol line says what was done
    assert "| QF90→40 |" in md and "re-encoded at QF40" in md


def test_decode_reads_the_quality_from_the_jpeg_for_a_quality_aware_model(tmp_path, monkeypatch):
    """decode: a quality-aware model restores at the quality read from the thumbnail's tables,
    or at --quality-hint; a plain model is never given one."""
    import sain
    from sain.encoding import decode_image, encode_file, received_quality

    torch.manual_seed(0)
    model = SAINQF(2, e_blocks=1, v_blocks=1).eval()
    weights = sain.save_weights(model, tmp_path / "qf.safetensors")
    photo = tmp_path / "p.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (32, 40, 3), dtype=np.uint8)).save(photo)
    thumb = encode_file(photo, tmp_path / "p.jpg", str(weights), quality=63).dst
    assert received_quality(thumb.read_bytes()) == 63 and received_quality(b"RIFF....WEBP") is None
    seen = []
    real = SAINQF.upscale
    monkeypatch.setattr(
        SAINQF,
        "upscale",
        lambda self, lr, generator=None, quality=None, **kw: (
            seen.append(quality),
            real(self, lr, generator, quality=quality, **kw),
        )[1],
    )
    decode_image(thumb, str(weights))
    decode_image(thumb, str(weights), quality_hint=90)
    assert seen == [63, 90]
    assert (
        cli.main(
            ["decode", str(thumb), "-o", str(tmp_path / "o"), "--model", str(weights), "-q", "--quality-hint", "41"]
        )
        == 0
    )
    assert seen[-1] == 41
