"""Issue 13, quality from the file: the quality a thumbnail is written at is recorded in its
sain:v1 metadata (every format); decode gives a quality-aware model a JPEG's table quality,
else the recorded one (WebP / AVIF); ``sain info`` / :func:`sain.inspect_thumbnail` show it.

Tiny images (64x48) and tiny weight files written here; one test uses the bundled
``sain-x2-jpeg`` (skipped when it is not bundled).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import sain
import sain.zoo
from sain import api
from sain.codecs import available_formats
from sain.decoding import choose_quality
from sain.encoding import encode_lr
from sain.models.sain_qf import SAINQF
from sain.thumbnail import META_TAG, ThumbnailInfo
from test_cli import file_id, run  # the CLI runner and a weight file's recorded name


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, Path]:
    """'plain': a 1-E-block SAIN; 'qf': a quality-aware SAIN-QF."""
    d = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    return {
        "plain": sain.save_weights(sain.SAIN(2, e_blocks=1, v_blocks=1).eval(), d / "plain.safetensors"),
        "qf": sain.save_weights(SAINQF(2, e_blocks=1, v_blocks=1).eval(), d / "qf.safetensors"),
    }


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    """A 64x48 crop of the bundled sample photo, as PNG."""
    path = tmp_path_factory.mktemp("photo") / "p.png"
    Image.open(api.SAMPLE_IMAGE).convert("RGB").crop((300, 100, 364, 148)).save(path)
    return path


def fields(block: str) -> dict[str, str]:
    """``label: value`` lines of one text block of ``sain info`` (the first line, the file, left out)."""
    out = {}
    for line in block.strip().splitlines()[1:]:
        label, _, value = line.strip().partition(": ")
        out.setdefault(label, value.strip())
    return out


def needs(fmt: str) -> None:
    if fmt not in available_formats():
        pytest.skip(f"Pillow without {fmt}")


def capture_upscale_quality(monkeypatch) -> list:
    """The ``quality=`` each SAIN-QF upscale is called with."""
    seen: list = []
    real = SAINQF.upscale

    def spy(self, lr, generator=None, quality=None, **kw):
        seen.append(quality)
        return real(self, lr, generator, quality=quality, **kw)

    monkeypatch.setattr(SAINQF, "upscale", spy)
    return seen


# -- the recorded quality -----------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "q"), [("jpeg", 35), ("jpeg", 90), ("webp", 50), ("webp", 85)])
def test_encode_records_the_quality_and_info_shows_it(tmp_path, weights, photo, capsys, fmt, q):
    needs(fmt)
    code, _, err = run(
        ["encode", photo, "-o", tmp_path, "--model", weights["plain"], "--format", fmt, "--quality", q], capsys
    )
    assert code == 0, err
    thumb = tmp_path / f"p.{api.SUFFIXES[fmt]}"
    text = Image.open(thumb).getexif()[META_TAG]
    assert json.loads(text[len("sain:v1 ") :])["quality"] == q
    assert api.read_info(thumb).quality == q

    code, out, err = run(["info", thumb], capsys)
    assert code == 0 and err == ""
    assert out.splitlines()[0] == str(thumb)
    f = fields(out)
    assert f["format"] == fmt.upper() and f["size"] == "32x24 pixels" and f["mode"] == "RGB"
    assert f["file size"] == f"{thumb.stat().st_size:,} bytes"
    assert f["sain thumbnail"].startswith("yes") and f["model"] == file_id(weights["plain"])
    assert (f["scale"], f["original size"], f["grayscale"]) == ("x2", "64x48", "no")
    assert f["recorded quality"] == str(q) and f["alpha"] == "no" and f["ICC profile"] == "no"
    assert f["quality-aware"].startswith("unknown")  # a weight file: whatever file decode is given
    if fmt == "jpeg":
        assert f["JPEG tables"] == f"quality {q} (exactly libjpeg's standard tables, confidence 1.00)"
        assert f["decode quality"].startswith(f"{q}: from the JPEG's quantisation tables")
    else:
        assert "JPEG tables" not in f
        assert f["decode quality"] == f"{q}: recorded in the sain metadata (WEBP has no quantisation tables)"

    code, out, err = run(["info", "--json", thumb], capsys)
    assert code == 0 and err == "" and len(out.splitlines()) == 1
    d = json.loads(out)
    assert d == api.inspect_thumbnail(thumb)
    assert (d["format"], d["width"], d["height"], d["mode"], d["bytes"]) == (
        fmt.upper(),
        32,
        24,
        "RGB",
        thumb.stat().st_size,
    )
    assert d["sain"] == {
        "model": file_id(weights["plain"]),
        "scale": 2,
        "width": 64,
        "height": 48,
        "gray": False,
        "quality": q,
    }
    assert d["decode_quality"]["quality"] == q and d["notes"] == []
    if fmt == "jpeg":
        assert d["jpeg_quality"] == {"quality": q, "exact": True, "confidence": 1.0, "candidates": [q]}
        assert d["decode_quality"]["source"] == "tables"
    else:
        assert d["jpeg_quality"] is None and d["decode_quality"]["source"] == "metadata"


def test_zoo_model_and_its_quality_awareness(tmp_path, photo, capsys):
    if not sain.zoo.ZOO["sain-x2-jpeg"].available:
        pytest.skip("sain-x2-jpeg not bundled")
    thumb = api.encode_file(photo, tmp_path / "z.jpg", "sain-x2-jpeg", quality=70).dst
    code, out, _ = run(["info", thumb], capsys)
    f = fields(out)
    assert code == 0 and f["model"] == "sain-x2-jpeg" and f["quality-aware"] == "no"
    assert f["decode quality"].endswith("sain-x2-jpeg is not quality-aware and restores without it")
    assert api.inspect_thumbnail(thumb)["quality_aware"] is False


@pytest.mark.parametrize(
    "record, problem",
    [
        ('"height": 48, "model": "m", "scale": 9, "width": 64', "scale 9, not 2, 4 or 8"),
        ('"height": 48, "model": "m", "scale": "2", "width": 64', "scale '2', not 2, 4 or 8"),
        ('"height": 48, "model": "m", "scale": 2, "width": -6', "width -6, not a size in pixels"),
        ('"height": 4e9, "model": "m", "scale": 2, "width": 64', "height 4000000000.0, not a size in pixels"),
        ('"height": 48, "model": "m", "scale": 2', "no width"),
        ('"height": 48, "model": 7, "scale": 2, "width": 64', "model is not a name"),
        ('"height": 48, "model": "m", "scale": 2, "width": 64, "gray": 1', "gray 1, not true or false"),
        (
            f'"height": 48, "model": "m", "scale": 2, "width": 64, "quality": "{"9" * 99}"',
            "quality '" + "9" * 20 + "..., not 1..100",
        ),
    ],
)
def test_corrupt_metadata_says_which_field(record, problem):
    """Hostile or damaged metadata is refused with the field at fault, in one short line."""
    with pytest.raises(ValueError) as err:
        ThumbnailInfo.from_text("sain:v1 {" + record + "}")
    assert str(err.value).startswith(f"corrupt sain metadata ({problem}")
    assert len(str(err.value)) < 200 and "\n" not in str(err.value)
    with pytest.raises(ValueError, match=r"corrupt sain metadata \(not a JSON object\)"):
        ThumbnailInfo.from_text("sain:v1 [1, 2]")


def test_recorded_quality_is_optional_and_checked():
    """Old thumbnails (no "quality") read as before; a bad value is corrupt metadata; the
    quality takes no part in ``==``; encode_lr records the quality it writes at."""
    old = ThumbnailInfo.from_text('sain:v1 {"height": 48, "model": "sain-x2-jpeg", "scale": 2, "width": 64}')
    assert old == ThumbnailInfo("sain-x2-jpeg", 2, 64, 48) and old is not None and old.quality is None
    new = ThumbnailInfo("sain-x2-jpeg", 2, 64, 48, quality=80)
    assert new.to_text() == 'sain:v1 {"height": 48, "model": "sain-x2-jpeg", "quality": 80, "scale": 2, "width": 64}'
    assert ThumbnailInfo.from_text(new.to_text()) == old and ThumbnailInfo.from_text(new.to_text()).quality == 80
    for bad in ("0", "101", "true", '"75"', "7.5"):
        with pytest.raises(ValueError, match="corrupt sain metadata"):
            ThumbnailInfo.from_text(f'sain:v1 {{"height": 4, "model": "m", "quality": {bad}, "scale": 2, "width": 4}}')
    lr = np.full((12, 16, 3), 100, np.uint8)
    assert api.read_info(encode_lr(lr, "jpeg", 33, old)).quality == 33
    assert api.read_info(encode_lr(lr, "jpeg", 61, new)).quality == 61  # the quality written, not the one passed


# -- which quality decode uses ------------------------------------------------------------


def test_recompressed_jpeg_tables_win_with_a_note(tmp_path, weights, photo, capsys, monkeypatch):
    """A thumbnail written at QF 90 and re-compressed by Pillow at QF 50 (metadata kept):
    info shows both, and decode restores at the tables' 50, with a note."""
    thumb = api.encode_file(photo, tmp_path / "t.jpg", str(weights["qf"]), quality=90).dst
    again = tmp_path / "again.jpg"
    with Image.open(thumb) as img:
        img.save(again, quality=50, exif=img.info["exif"])
    d = api.inspect_thumbnail(again)
    assert d["sain"]["quality"] == 90 and d["jpeg_quality"]["quality"] == 50 and d["jpeg_quality"]["exact"]
    assert d["decode_quality"]["quality"] == 50 and d["decode_quality"]["source"] == "tables"
    assert len(d["notes"]) == 1 and "tables say quality 50" in d["notes"][0] and "records 90" in d["notes"][0]
    assert d["quality_aware"] is None  # a weight file: unknown until decode is given it
    code, out, _ = run(["info", again], capsys)
    f = fields(out)
    assert code == 0 and f["recorded quality"] == "90" and f["JPEG tables"].startswith("quality 50 ")
    assert f["decode quality"].startswith("50: from the JPEG's quantisation tables") and "records 90" in f["note"]

    seen = capture_upscale_quality(monkeypatch)
    r = api.decode_file(again, tmp_path / "r.png", str(weights["qf"]))
    assert seen == [50] and any("records 90" in n for n in r.notes)
    api.decode_image(again, str(weights["qf"]), quality_hint=70)  # the hint overrides all
    api.decode_image(thumb, str(weights["qf"]))
    assert seen == [50, 70, 90]
    assert choose_quality(again.read_bytes(), 70, 90).source == "hint"


def test_webp_thumbnail_decodes_at_the_recorded_quality(tmp_path, weights, photo, monkeypatch):
    needs("webp")
    thumb = api.encode_file(photo, tmp_path / "t.webp", str(weights["qf"]), quality=44).dst
    seen = capture_upscale_quality(monkeypatch)
    r = api.decode_file(thumb, tmp_path / "r.png", str(weights["qf"]))
    api.decode_image(thumb, str(weights["qf"]), quality_hint=81)
    assert seen == [44, 81] and r.notes == []
    # a WebP thumbnail written before the quality was recorded: the model's default
    old = ThumbnailInfo(file_id(weights["qf"]), 2, 64, 48)
    with Image.open(thumb) as img:
        buf = io.BytesIO()
        img.save(buf, format="WEBP", quality=44, exif=old.exif())
    assert api.read_info(buf.getvalue()).quality is None
    api.decode_image(buf.getvalue(), str(weights["qf"]))
    assert seen[-1] is None
    d = api.inspect_thumbnail(buf.getvalue())
    assert d["file"] == "<bytes>" and d["sain"]["quality"] is None
    assert d["decode_quality"]["source"] == "none" and "older thumbnail" in d["decode_quality"]["reason"]


def test_png_thumbnail_decodes_as_lossless(tmp_path, weights, photo, monkeypatch):
    """A thumbnail saved as PNG (lossless: nothing to undo) is restored at quality 100 by a
    quality-aware model, whatever quality its metadata records; a hint still wins."""
    thumb = api.encode_file(photo, tmp_path / "t.jpg", str(weights["qf"]), quality=40).dst
    png = tmp_path / "t.png"
    with Image.open(thumb) as img:
        img.save(png, exif=img.info["exif"])  # the sain record (quality 40) kept
    assert api.read_info(png.read_bytes()).quality == 40
    seen = capture_upscale_quality(monkeypatch)
    api.decode_image(png, str(weights["qf"]))
    api.decode_image(png, str(weights["qf"]), quality_hint=60)
    assert seen == [100, 60]
    d = api.inspect_thumbnail(png)
    assert d["decode_quality"]["quality"] == 100 and d["decode_quality"]["source"] == "lossless"


# -- foreign and bad files ----------------------------------------------------------------


def test_plain_images_are_not_thumbnails(tmp_path, photo, capsys):
    plain = tmp_path / "plain.jpg"
    Image.open(photo).save(plain, quality=83)
    code, out, err = run(["info", plain, photo], capsys)
    assert code == 0 and err == ""
    blocks = out.split("\n\n")
    assert len(blocks) == 2
    jpg, png = fields(blocks[0]), fields(blocks[1])
    assert jpg["sain thumbnail"].startswith("no (not a sain thumbnail") and "model" not in jpg
    assert jpg["size"] == "64x48 pixels" and jpg["JPEG tables"].startswith("quality 83 (exactly")
    assert jpg["decode quality"].startswith("83: from the JPEG's quantisation tables")
    assert png["format"] == "PNG" and png["sain thumbnail"].startswith("no") and "JPEG tables" not in png
    assert png["decode quality"].startswith("100: PNG is lossless")
    d = sain.inspect_thumbnail(plain)
    assert d["sain_thumbnail"] is False and d["sain"] is None and d["quality_aware"] is None
    assert d["sain_error"] is None


def test_corrupt_metadata_is_shown_not_fatal(tmp_path, capsys):
    """info reads a file whose sain metadata is corrupt (decode refuses it) and says so."""
    exif = Image.Exif()
    exif[META_TAG] = 'sain:v1 {"height": 4, "model": "m", "quality": 500, "scale": 2, "width": 4}'
    bad = tmp_path / "bad.jpg"
    Image.new("RGB", (8, 6), (90, 120, 30)).save(bad, quality=70, exif=exif)
    code, out, _ = run(["info", bad], capsys)
    f = fields(out)
    assert code == 0 and f["sain thumbnail"].startswith("no: corrupt sain metadata") and "note" not in f
    assert api.inspect_thumbnail(bad)["sain_error"].startswith("corrupt sain metadata")
    assert f["JPEG tables"].startswith("quality 70 ")


def test_bad_files_one_line_each_and_exit_1(tmp_path, photo, capsys):
    good = tmp_path / "good.jpg"
    Image.open(photo).save(good, quality=60)
    empty, text, cut = tmp_path / "empty.jpg", tmp_path / "text.jpg", tmp_path / "cut.jpg"
    empty.write_bytes(b"")
    text.write_text("not an image\n")
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    missing = tmp_path / "missing.jpg"
    for bad in (missing, empty, text, cut):
        code, out, err = run(["info", bad, good], capsys)
        assert code == 1, bad
        assert "Traceback" not in err and out.splitlines()[0] == str(good)  # the good file still printed
        lines = err.strip().splitlines()
        assert len(lines) == 2 and str(bad) in lines[0] and lines[1] == "sain info: 1 of 2 inputs failed", err
        with pytest.raises((OSError, ValueError), match=bad.name):
            api.inspect_thumbnail(bad)
    code, out, err = run(["info", "--json", cut], capsys)
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1 and "truncated" in err.lower()
    code, out, err = run(["info", good, "--json"], capsys)
    assert code == 0 and json.loads(out)["jpeg_quality"]["quality"] == 60
