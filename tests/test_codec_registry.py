"""The codec description (sain.codecs.registry), the one quality check and the one quantiser."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

import sain.imaging.io as imaging_io
from sain.codecs import (
    CODECS,
    FORMATS,
    available_codecs,
    available_formats,
    check_quality,
    diff_jpeg,
    encode,
    get_codec,
    quantize,
    quantize_u8,
    to_levels,
)
from sain.imaging import to_uint8, write_image


def test_table() -> None:
    assert tuple(CODECS) == FORMATS == ("jpeg", "webp", "avif", "png")
    assert {c.name: c.suffix for c in CODECS.values()} == {"jpeg": "jpg", "webp": "webp", "avif": "avif", "png": "png"}
    assert [c.name for c in CODECS.values() if c.lossy] == ["jpeg", "webp", "avif"]
    assert CODECS["png"].quality_range is None and CODECS["jpeg"].quality_range == (1, 100)
    assert CODECS["jpeg"].surrogate() is diff_jpeg
    assert all(c.surrogate() is None for c in CODECS.values() if c.name != "jpeg")
    assert tuple(c.name for c in available_codecs()) == available_formats()


def test_get_codec() -> None:
    assert get_codec("JPG") is get_codec("jpeg") is CODECS["jpeg"]
    assert get_codec(CODECS["webp"]) is CODECS["webp"]
    for bad in ("gif", "", None, 3):
        with pytest.raises(ValueError, match="jpeg, webp, avif, png") as info:
            get_codec(bad)  # type: ignore[arg-type]
        assert len(str(info.value).splitlines()) == 1


@pytest.mark.parametrize("good", [1, 75, 100, np.int64(30)])
def test_check_quality_accepts(good) -> None:
    q = check_quality(good)
    assert q == int(good) and type(q) is int


@pytest.mark.parametrize(
    "bad, message",
    [
        (0, "out of range 1..100"),
        (101, "out of range"),
        (75.0, "integer"),
        (True, "integer"),
        ("75", "integer"),
        (None, "integer"),
    ],
)
def test_check_quality_rejects(bad, message) -> None:
    with pytest.raises(ValueError, match=message):
        check_quality(bad)
    with pytest.raises(ValueError, match=message):
        check_quality(bad, "webp")


def test_check_quality_real_numbers() -> None:
    assert check_quality(42.5, "jpeg", integer=False) == 42.5
    for bad in (0.5, 100.5, float("nan")):
        with pytest.raises(ValueError, match="out of range"):
            check_quality(bad, integer=False)
    with pytest.raises(TypeError):
        check_quality("75", integer=False)


def test_write_image_uses_the_table(tmp_path) -> None:
    assert imaging_io._WRITE_FORMATS["jpg"] == imaging_io._WRITE_FORMATS["jpeg"] == "JPEG"
    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="out of range 1..100"):
        write_image(tmp_path / "a.jpg", img, quality=0)
    write_image(tmp_path / "a.jpg", img, quality=1)
    with pytest.raises(ValueError, match="bmp, jpeg, jpg, png"):
        write_image(tmp_path / "a.gif", img)


def test_encode_with_exif_is_the_plain_encode_plus_metadata() -> None:
    rng = np.random.default_rng(0)
    img = (rng.random((16, 24, 3)) * 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x010E] = "hello"
    data = encode(img, "jpeg", 60, exif=exif)
    with Image.open(io.BytesIO(data)) as im:
        assert im.getexif()[0x010E] == "hello"
        assert np.array_equal(np.asarray(im), np.asarray(Image.open(io.BytesIO(encode(img, "jpeg", 60)))))


def test_one_rounding_rule() -> None:
    x = torch.cat([torch.linspace(-0.2, 1.2, 1001), torch.arange(256) / 255, (torch.arange(255) + 0.5) / 255])
    ref = torch.round(x.clamp(0, 1) * 255) / 255  # the formula the package always used
    assert torch.equal(quantize_u8(x), ref)
    assert torch.equal(quantize(x), ref)
    assert torch.equal(to_levels(x) / 255, ref)
    img = x[: 3 * 7 * 11].reshape(3, 7, 11)
    assert np.array_equal(to_uint8(img), (torch.round(img.clamp(0, 1) * 255)).to(torch.uint8).permute(1, 2, 0).numpy())
