"""Reading the libjpeg quality back from a JPEG's quantisation tables: exact for every QF
1..100 written by Pillow (4:2:0 and 4:4:4, colour and grey) and by libjpeg-turbo's
``cjpeg`` (16-bit and baseline tables), the nearest quality for custom tables, and a
one-line error for anything that is not a readable JPEG."""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from sain.codecs.diffjpeg import quality_tables
from sain.codecs.jpeg_quality import QualityEstimate, estimate_jpeg_quality, libjpeg_tables

CJPEG = shutil.which("cjpeg")


def _image(size: int = 24) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def _pillow_jpeg(img: Image.Image, **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", **params)
    return buf.getvalue()


def test_tables_are_libjpeg_s_and_the_differentiable_jpeg_s():
    for q in (1, 2, 10, 49, 50, 75, 99, 100):
        luma, chroma = quality_tables(q, dtype=torch.float64)
        ref_l, ref_c = libjpeg_tables(q)
        assert tuple(int(v) for v in luma.flatten()) == ref_l
        assert tuple(int(v) for v in chroma.flatten()) == ref_c
    assert set(libjpeg_tables(1)[0]) == {255}  # SAIN_SPEC 7: QF 1 is all 255, QF 2 all but one
    assert sorted(libjpeg_tables(2)[0])[:2] == [250, 255]
    assert max(libjpeg_tables(10, baseline=False)[0]) > 255
    assert set(libjpeg_tables(100)[0]) == {1}
    # baseline tables of distinct qualities are distinct: an exact match names one quality
    assert len({libjpeg_tables(q) for q in range(1, 101)}) == 100
    with pytest.raises(ValueError, match="1..100"):
        libjpeg_tables(0)


@pytest.mark.parametrize("subsampling", [None, 0], ids=["default-4:2:0", "4:4:4"])
def test_every_pillow_quality_is_read_back_exactly(subsampling):
    img = _image()
    params = {} if subsampling is None else {"subsampling": subsampling}
    for q in range(1, 101):
        est = estimate_jpeg_quality(_pillow_jpeg(img, quality=q, **params))
        assert est == QualityEstimate(q, True, 1.0, (q,)), (q, est)


def test_grey_jpeg_paths_and_file_objects(tmp_path):
    grey = _pillow_jpeg(_image().convert("L"), quality=37)
    assert estimate_jpeg_quality(grey).quality == 37 and estimate_jpeg_quality(grey).exact
    path = tmp_path / "t.jpg"
    path.write_bytes(_pillow_jpeg(_image(), quality=64))
    assert estimate_jpeg_quality(path).quality == 64
    assert estimate_jpeg_quality(str(path)).quality == 64
    with path.open("rb") as f:
        assert estimate_jpeg_quality(f).quality == 64


def test_custom_tables_give_the_nearest_quality_inexactly():
    img = _image()
    luma, chroma = libjpeg_tables(60)
    # QF 60's tables scaled by 1.1: the scale 80 % becomes 88 %, QF 56's
    scaled = [[round(v * 1.1) for v in luma], [round(v * 1.1) for v in chroma]]
    est = estimate_jpeg_quality(_pillow_jpeg(img, qtables=scaled))
    assert not est.exact and est.quality == 56 and est.candidates == (56,)
    assert 0.5 < est.confidence < 1.0
    # QF 80's tables with a few entries changed stay nearest to QF 80
    l80, c80 = (list(t) for t in libjpeg_tables(80))
    l80[5] += 3
    c80[20] -= 2
    est = estimate_jpeg_quality(_pillow_jpeg(img, qtables=[l80, c80]))
    assert not est.exact and est.quality == 80 and est.confidence > 0.8
    # tables unrelated to the standard ones: an estimate with a low confidence
    rng = np.random.default_rng(1)
    rand = [rng.integers(1, 120, 64).tolist() for _ in range(2)]
    est = estimate_jpeg_quality(_pillow_jpeg(img, qtables=rand))
    assert not est.exact and 1 <= est.quality <= 100 and 0 < est.confidence < 0.2


def test_not_a_jpeg_is_a_one_line_value_error(tmp_path):
    png = io.BytesIO()
    _image().save(png, format="PNG")
    with pytest.raises(ValueError, match="a PNG file, not a JPEG") as e:
        estimate_jpeg_quality(png.getvalue())
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="not a readable image"):
        estimate_jpeg_quality(b"definitely not an image")
    with pytest.raises(ValueError, match="no such file"):
        estimate_jpeg_quality(tmp_path / "missing.jpg")
    with pytest.raises(ValueError, match="expected JPEG bytes"):
        estimate_jpeg_quality(42)


@pytest.mark.skipif(CJPEG is None, reason="cjpeg not on PATH (Debian package libjpeg-turbo-progs)")
def test_every_cjpeg_quality_is_read_back_exactly(tmp_path):
    rng = np.random.default_rng(2)
    ppm = tmp_path / "in.ppm"
    ppm.write_bytes(b"P6\n24 16\n255\n" + rng.integers(0, 256, (16, 24, 3), dtype=np.uint8).tobytes())
    for q in range(10, 101):
        for extra in ([], ["-baseline"], ["-sample", "1x1"]):
            out = subprocess.run([CJPEG, "-quality", str(q), *extra, str(ppm)], capture_output=True, check=True).stdout
            est = estimate_jpeg_quality(out)
            assert est.exact and est.quality == q and est.candidates == (q,), (q, extra, est)
