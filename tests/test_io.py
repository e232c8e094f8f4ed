"""Tests for sain.imaging.io: reading, writing and listing image files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, PngImagePlugin, features

from sain.imaging import (
    ImageReadError,
    from_uint8,
    list_images,
    read_image,
    read_image_u8,
    to_uint8,
    write_image,
)


def _rgb(h: int = 6, w: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ----------------------------------------------------------------- read modes


def test_rgb_png_round_trip(tmp_path):
    a = _rgb()
    Image.fromarray(a).save(tmp_path / "a.png")
    x = read_image(tmp_path / "a.png")
    assert x.shape == (3, 6, 5) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() <= 1
    np.testing.assert_array_equal(read_image_u8(tmp_path / "a.png"), a)
    np.testing.assert_array_equal(to_uint8(x), a)


@pytest.mark.parametrize("mode", ["L", "1"])
def test_grayscale_is_replicated(tmp_path, mode):
    g = Image.fromarray(_rgb()[..., 0]).convert(mode)
    g.save(tmp_path / "g.png")
    out = read_image_u8(tmp_path / "g.png")
    expected = np.asarray(g.convert("L"))
    assert out.shape == (6, 5, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], expected)


def test_palette_with_transparency(tmp_path):
    p = Image.fromarray(_rgb()).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    p.info["transparency"] = 0
    p.save(tmp_path / "p.png", transparency=0)
    with Image.open(tmp_path / "p.png") as reread:
        assert reread.mode == "P"
        expected = np.asarray(reread.convert("RGBA"))[..., :3]
    np.testing.assert_array_equal(read_image_u8(tmp_path / "p.png"), expected)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_dropped_not_composited(tmp_path, mode):
    a = _rgb()
    alpha = np.zeros(a.shape[:2], np.uint8)  # fully transparent: compositing would give white
    if mode == "RGBA":
        img = Image.fromarray(np.dstack([a, alpha]))
        expected = a
    else:
        img = Image.merge("LA", [Image.fromarray(a[..., 0]), Image.fromarray(alpha)])
        expected = np.repeat(a[..., :1], 3, axis=2)
    img.save(tmp_path / "t.png")
    np.testing.assert_array_equal(read_image_u8(tmp_path / "t.png"), expected)


def test_cmyk(tmp_path):
    img = Image.fromarray(_rgb()).convert("CMYK")
    img.save(tmp_path / "c.tiff")
    out = read_image_u8(tmp_path / "c.tiff")
    np.testing.assert_array_equal(out, np.asarray(img.convert("RGB")))


def test_sixteen_bit_grayscale_keeps_precision(tmp_path):
    v = np.array([[0, 1, 257, 32767], [32768, 65279, 65534, 65535]], dtype=np.uint16)
    Image.fromarray(v).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as img:
        assert img.mode.startswith("I")
    x = read_image(tmp_path / "g16.png")
    assert x.shape == (3, 2, 4)
    for c in range(3):
        np.testing.assert_allclose(x[c].numpy(), v / 65535.0, rtol=1e-6, atol=0)
    assert x[0, 0, 1] > 0  # a 1/65535 step survives (8-bit would lose it)
    u8 = read_image_u8(tmp_path / "g16.png")
    np.testing.assert_array_equal(u8[..., 0], np.rint(v.astype(np.float64) * 255 / 65535).astype(np.uint8))


def test_exif_orientation_is_applied(tmp_path):
    a = _rgb(2, 3)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(a).save(tmp_path / "r.png", exif=exif)
    out = read_image_u8(tmp_path / "r.png")
    np.testing.assert_array_equal(out, np.rot90(a, k=-1))


# ------------------------------------------------------------------ read errors


def _assert_read_error(path):
    for reader in (read_image, read_image_u8):
        with pytest.raises(ImageReadError) as info:
            reader(path)
        msg = str(info.value)
        assert path.name in msg and "\n" not in msg
        assert isinstance(info.value, ValueError)


def test_missing_file(tmp_path):
    _assert_read_error(tmp_path / "missing.png")


def test_text_file_named_png(tmp_path):
    (tmp_path / "text.png").write_text("not an image\n")
    _assert_read_error(tmp_path / "text.png")


def test_truncated_png(tmp_path):
    Image.fromarray(_rgb(64, 64)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    _assert_read_error(tmp_path / "cut.png")


def test_directory(tmp_path):
    (tmp_path / "d.png").mkdir()
    _assert_read_error(tmp_path / "d.png")


# ----------------------------------------------------------- uint8 conversions


def test_to_uint8_rounding_and_clamping():
    x = torch.tensor([-0.2, 0.0, 0.5 / 255, 1.5 / 255, 2.5 / 255, 0.4999, 1.0, 1.3]).reshape(1, 1, 8).expand(3, 1, 8)
    expected = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    out = to_uint8(x)
    assert out.dtype == np.uint8 and out.shape == (1, 8, 3)
    np.testing.assert_array_equal(out, expected)
    assert out[0, 0, 0] == 0 and out[0, -1, 0] == 255


def test_uint8_round_trip_is_exact():
    a = np.arange(256, dtype=np.uint8).reshape(16, 16)[..., None].repeat(3, axis=2)
    x = from_uint8(a)
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32
    np.testing.assert_array_equal(to_uint8(x), a)
    np.testing.assert_array_equal(to_uint8(x.double()), a)
    np.testing.assert_array_equal(to_uint8(x.half()), a)


@pytest.mark.parametrize(
    "bad", [torch.rand(1, 3, 4, 4), torch.rand(4, 4, 3), torch.zeros(3, 4, 4, dtype=torch.uint8), np.zeros((3, 4, 4))]
)
def test_to_uint8_errors(bad):
    with pytest.raises(ValueError):
        to_uint8(bad)


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 3)), np.zeros((3, 4, 4), np.uint8), torch.zeros(4, 4, 3)])
def test_from_uint8_errors(bad):
    with pytest.raises(ValueError):
        from_uint8(bad)


# ------------------------------------------------------------------------ write


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".PNG"])
def test_write_lossless_formats(tmp_path, suffix):
    a = _rgb()
    write_image(tmp_path / f"a{suffix}", a)
    np.testing.assert_array_equal(read_image_u8(tmp_path / f"a{suffix}"), a)
    assert _files(tmp_path) == [f"a{suffix}"]


def test_write_tensor_and_pil_inputs(tmp_path):
    x = torch.rand(3, 6, 5)
    out = write_image(tmp_path / "t.png", x)
    assert out == tmp_path / "t.png"
    np.testing.assert_array_equal(read_image_u8(out), to_uint8(x))
    write_image(tmp_path / "p.png", Image.fromarray(_rgb()))
    np.testing.assert_array_equal(read_image_u8(tmp_path / "p.png"), _rgb())


@pytest.mark.parametrize(
    ("fmt", "suffix", "pil_name"),
    [("jpeg", ".jpg", "JPEG"), ("webp", ".webp", "WEBP"), ("avif", ".avif", "AVIF")],
)
def test_write_lossy_formats_with_quality(tmp_path, fmt, suffix, pil_name):
    if fmt in ("webp", "avif") and not features.check(fmt):
        pytest.skip(f"Pillow without {fmt}")
    a = np.asarray(Image.fromarray(_rgb(32, 32)).resize((64, 64)))
    write_image(tmp_path / f"lo{suffix}", a, quality=10)
    write_image(tmp_path / f"hi{suffix}", a, quality=95)
    with Image.open(tmp_path / f"hi{suffix}") as img:
        assert img.format == pil_name
    assert (tmp_path / f"lo{suffix}").stat().st_size < (tmp_path / f"hi{suffix}").stat().st_size
    assert read_image_u8(tmp_path / f"hi{suffix}").shape == (64, 64, 3)


def test_format_argument_overrides_suffix(tmp_path):
    write_image(tmp_path / "x.bin", _rgb(), format="JPEG")
    with Image.open(tmp_path / "x.bin") as img:
        assert img.format == "JPEG"


def test_pil_kwargs_pass_through(tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add_text("sain", "hello")
    write_image(tmp_path / "m.png", _rgb(), pnginfo=info)
    with Image.open(tmp_path / "m.png") as img:
        assert img.text["sain"] == "hello"
    write_image(tmp_path / "c.jpg", _rgb(), comment=b"made by sain")
    with Image.open(tmp_path / "c.jpg") as img:
        assert img.info["comment"] == b"made by sain"


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("a.gif", {}),  # unsupported suffix
        ("a", {}),  # no suffix
        ("a.png", {"format": "xyz"}),
        ("a.png", {"quality": 90}),  # quality on a lossless format
        ("a.jpg", {"quality": 101}),
        ("a.jpg", {"quality": 9.5}),
    ],
)
def test_write_rejects_bad_arguments_and_leaves_nothing(tmp_path, name, kwargs):
    with pytest.raises(ValueError):
        write_image(tmp_path / name, _rgb(), **kwargs)
    assert _files(tmp_path) == []


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 3)), torch.zeros(4, 4, 3), [[1, 2, 3]]])
def test_write_rejects_bad_images(tmp_path, bad):
    with pytest.raises(ValueError):
        write_image(tmp_path / "a.png", bad)
    assert _files(tmp_path) == []


def test_failed_write_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "a.png"
    target.write_bytes(b"previous content")

    def failing_save(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG partial")  # some bytes reach the temporary file...
        raise OSError("disk full")  # ...then the encoder fails

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        write_image(target, _rgb())
    assert _files(tmp_path) == ["a.png"]  # no temporary file left behind
    assert target.read_bytes() == b"previous content"  # target untouched


def test_failed_write_of_new_file_leaves_nothing(tmp_path):
    with pytest.raises(TypeError):
        write_image(tmp_path / "a.jpg", _rgb(), subsampling=object())  # the encoder rejects it
    assert _files(tmp_path) == []


def test_write_replaces_existing_file(tmp_path):
    write_image(tmp_path / "a.png", _rgb(seed=1))
    write_image(tmp_path / "a.png", _rgb(seed=2))
    np.testing.assert_array_equal(read_image_u8(tmp_path / "a.png"), _rgb(seed=2))
    assert _files(tmp_path) == ["a.png"]


# ------------------------------------------------------------------ list_images


def test_list_images(tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    names = [
        "b.png",
        "a.JPG",
        "c.jpeg",
        "d.bmp",
        "e.webp",
        "f.TIF",
        "g.tiff",
        "h.avif",
        "sub/z.png",
        "sub/deeper/y.PNG",
    ]
    for n in names:
        (tmp_path / n).write_bytes(b"")
    for n in ["notes.txt", "x.gif", ".hidden.png", "sub/._y.png"]:
        (tmp_path / n).write_bytes(b"")
    (tmp_path / "dir.png").mkdir()  # a directory is not an image file

    found = list_images(tmp_path)
    assert found == sorted(tmp_path / n for n in names)
    flat = list_images(tmp_path, recursive=False)
    assert flat == sorted(tmp_path / n for n in names if "/" not in n)


def test_list_images_errors(tmp_path):
    with pytest.raises(NotADirectoryError):
        list_images(tmp_path / "missing")
    (tmp_path / "f.png").write_bytes(b"")
    with pytest.raises(NotADirectoryError):
        list_images(tmp_path / "f.png")
