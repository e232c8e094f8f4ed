"""Photos as people have them (issue 11): inputs never harmed, untrusted thumbnails,
huge, float, grayscale, transparent, animated and colour-managed files.

Every input is generated here; every failure must be one line, with no traceback and no
output or temporary file left behind. The issue's numbered items, each under a heading
``# -- N:`` below, except 6 (also ``test_cli.test_encode_decode_restores_exact_size``) and
17 (``test_cli.test_models_table_shows_every_test_set_and_unbundled_models_apart`` and
``test_cli.test_no_user_text_cites_a_document_users_do_not_have``); the corpus of 40+
inputs is ``test_corpus_of_inputs``.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, PngImagePlugin

import sain
import sain.codecs
import sain.commands.common
import sain.fileio
import sain.imaging
import sain.imaging.photo
import sain.thumbnail
import sain.zoo
from sain import api
from sain.cli import main
from sain.encoding import encode_lr

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    box = sain.SAIN(2, e_blocks=1, v_blocks=0)
    with torch.no_grad():
        box.gmm.gmm_para[2].fill_(-20)
    return {"box": sain.save_weights(box, d / "box.safetensors")}


def run(argv: list, capsys) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def one_line_error(err: str) -> str:
    assert "Traceback" not in err and "Warning" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def photo(path: Path, w: int = 24, h: int = 20, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


# -- 1: an output is never an input ---------------------------------------------------------


@pytest.mark.parametrize("command", ["encode", "decode", "roundtrip"])
@pytest.mark.parametrize("how", ["same", "symlink", "hardlink"])
def test_output_that_is_an_input_is_refused_even_with_force(tmp_path, weights, capsys, command, how):
    d = tmp_path / "d"
    d.mkdir()
    if command == "encode":
        real = tmp_path / "real.jpg"
        Image.fromarray(np.full((20, 24, 3), 100, np.uint8)).save(real)
        name = "p.jpg"
    else:  # decode writes <stem>.png, roundtrip writes <stem>.png too
        real = photo(tmp_path / "real.png")
        name = "p.png"
    src = d / name
    if how == "same":
        src.write_bytes(real.read_bytes())
    elif how == "symlink":
        (tmp_path / "other").mkdir()
        src = tmp_path / "other" / name
        src.write_bytes(real.read_bytes())
        os.symlink(src, d / name)
    else:
        (tmp_path / "other").mkdir()
        src = tmp_path / "other" / name
        src.write_bytes(real.read_bytes())
        os.link(src, d / name)
    before = src.read_bytes()
    listing = files(d)
    # with a link, d/<name> (the output) is the input under another name
    code, _, err = run([command, src, "-o", d, "--model", weights["box"], "--force"], capsys)
    assert code == 2
    assert "is the input" in one_line_error(err)
    assert src.read_bytes() == before and files(d) == listing


def test_api_refuses_output_that_is_the_input(tmp_path, weights):
    src = tmp_path / "p.jpg"
    Image.fromarray(np.full((20, 24, 3), 100, np.uint8)).save(src)
    before = src.read_bytes()
    with pytest.raises(ValueError, match="is the input"):
        api.encode_file(src, src, weights["box"], force=True)
    assert src.read_bytes() == before


# -- 5: a thumbnail never chooses a local file as the model ------------------------------------


def test_metadata_never_chooses_a_local_file(tmp_path, weights, capsys, monkeypatch):
    lr = np.full((10, 12, 3), 120, np.uint8)
    opened: list[str] = []
    real_load = sain.zoo.load_checkpoint
    monkeypatch.setattr(sain.zoo, "load_checkpoint", lambda p: opened.append(str(p)) or real_load(p))
    sain.zoo.clear_cache()
    thumb = tmp_path / "t.jpg"
    for target in (str(weights["box"]), "/etc/passwd"):
        info = api.ThumbnailInfo(model=target, scale=2, width=24, height=20)
        thumb.write_bytes(encode_lr(lr, "jpeg", 90, info))
        code, _, err = run(["decode", thumb, "-o", tmp_path / "r"], capsys)
        assert code == 1 and "not a zoo model" in one_line_error(err) and "sain-x2-jpeg" in err
        assert opened == [] and files(tmp_path / "r") == []
        with pytest.raises(ValueError, match="not a zoo model"):
            api.decode_image(thumb)
    # a file given explicitly is still allowed
    code, _, err = run(["decode", thumb, "-o", tmp_path / "r", "--model", weights["box"]], capsys)
    assert code == 0, err


# -- 3: a pixel limit from the header, before decoding ------------------------------------------


def huge_png(path: Path, w: int, h: int) -> Path:
    """A valid gray PNG of w x h pixels, written row by row (a few hundred KB)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    comp, row, parts = zlib.compressobj(9), b"\0" * (w + 1), []
    for _ in range(h):
        parts.append(comp.compress(row))
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


@pytest.mark.parametrize("size", [(10001, 10000), (12000, 9000)])
def test_pixel_limit_from_the_header(tmp_path, weights, capsys, monkeypatch, size):
    src = huge_png(tmp_path / "huge.png", *size)
    loaded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: loaded.append(1) or None)
    for command in ("encode", "roundtrip"):
        code, _, err = run([command, src, "-o", tmp_path / "out", "--model", weights["box"]], capsys)
        line = one_line_error(err)
        assert code == 1 and "huge.png" in line and "megapixels" in line and "--max-pixels" in line
        assert "DecompressionBomb" not in err and files(tmp_path / "out") == []
    assert loaded == []  # nothing decoded


def test_default_pixel_limit_is_100_megapixels(tmp_path, capsys):
    assert sain.imaging.DEFAULT_MAX_PIXELS == 100_000_000
    with sain.imaging.open_image(huge_png(tmp_path / "95mp.png", 10000, 9500), sain.imaging.DEFAULT_MAX_PIXELS):
        pass  # under the limit: opened (not decoded here), no Pillow warning or error
    with pytest.raises(
        sain.imaging.ImageReadError,
        match=r"101,000,000 pixels \(101 megapixels\), above the limit of 100,000,000 \(raise it with --max-pixels",
    ):
        with sain.imaging.open_image(huge_png(tmp_path / "101mp.png", 10100, 10000), sain.imaging.DEFAULT_MAX_PIXELS):
            pass
    for command in ("encode", "decode", "roundtrip"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "100,000,000" in " ".join(capsys.readouterr().out.split()), command


def test_max_pixels_option_and_decode_limit(tmp_path, weights, capsys):
    src = photo(tmp_path / "p.png", 24, 20)
    code, _, err = run(["encode", src, "-o", tmp_path / "t", "--model", weights["box"], "--max-pixels", "400"], capsys)
    assert code == 1 and "24x20 = 480 pixels (0.00048 megapixels), above the limit of 400 (" in one_line_error(err)
    code, _, err = run(["encode", src, "-o", tmp_path / "t", "--model", weights["box"], "--max-pixels", "480"], capsys)
    assert code == 0, err
    argv = ["decode", tmp_path / "t" / "p.jpg", "-o", tmp_path / "r", "--model", weights["box"]]
    code, _, err = run(argv + ["--max-pixels", "479"], capsys)
    assert code == 1 and "cannot restore" in one_line_error(err) and files(tmp_path / "r") == []
    code, _, err = run(argv + ["--max-pixels", "0"], capsys)
    assert code == 2 and "positive" in err
    code, _, err = run(argv, capsys)
    assert code == 0, err


def test_pillow_bomb_warning_never_reaches_the_user(tmp_path, recwarn):
    src = huge_png(tmp_path / "huge.png", 10000, 9500)
    with pytest.raises(sain.imaging.ImageReadError, match="megapixels"):
        sain.imaging.read_image(src, max_pixels=64_000_000)
    with Image.open(huge_png(tmp_path / "small.png", 30, 20)):
        pass
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


# -- 4: float and 16-bit inputs ---------------------------------------------------------------


@pytest.mark.parametrize("peak", [1.0, 255.0])
def test_float_tiff_is_scaled_by_its_range(tmp_path, weights, capsys, peak):
    v = np.linspace(0.1, 0.9, 20 * 24, dtype=np.float32).reshape(20, 24)
    Image.fromarray(v * np.float32(peak), mode="F").save(tmp_path / "f.tif")
    x = sain.imaging.read_image(tmp_path / "f.tif")
    np.testing.assert_allclose(x[0].numpy(), v, atol=1e-6)
    code, _, err = run(["encode", tmp_path / "f.tif", "-o", tmp_path / "t", "--model", weights["box"]], capsys)
    assert code == 0, err
    lr = np.asarray(Image.open(tmp_path / "t" / "f.jpg").convert("L"), dtype=np.float64)
    assert 100 < lr.mean() < 155  # not black


def test_float_tiff_out_of_range_is_refused(tmp_path, weights, capsys):
    Image.fromarray(np.full((20, 24), 1000.0, np.float32), mode="F").save(tmp_path / "f.tif")
    code, _, err = run(["encode", tmp_path / "f.tif", "-o", tmp_path / "t", "--model", weights["box"]], capsys)
    assert code == 1 and "expected 0..1 or 0..255" in one_line_error(err) and files(tmp_path / "t") == []


def test_sixteen_bit_gray_png_is_not_dark(tmp_path, weights, capsys):
    Image.fromarray(np.full((20, 24), 40000, np.uint16)).save(tmp_path / "g16.png")
    code, _, err = run(["encode", tmp_path / "g16.png", "-o", tmp_path / "t", "--model", weights["box"]], capsys)
    assert code == 0, err
    lr = np.asarray(Image.open(tmp_path / "t" / "g16.jpg").convert("L"), dtype=np.float64)
    assert abs(lr.mean() - 40000 / 257) < 3


# -- 8: an empty file says so ----------------------------------------------------------------


@pytest.mark.parametrize("command", ["encode", "decode"])
def test_empty_file_says_empty(tmp_path, weights, capsys, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    Path("empty.png").write_bytes(b"")
    code, _, err = run([command, "empty.png", "-o", "out", "--model", weights["box"]], capsys)
    line = one_line_error(err)
    assert code == 1 and "cannot read image 'empty.png': empty file" in line
    assert "BytesIO" not in err and files(tmp_path / "out") == []


def test_garbage_thumbnail_names_the_file_not_an_object(tmp_path, weights, capsys):
    (tmp_path / "junk.jpg").write_bytes(b"this is text")
    code, _, err = run(["decode", tmp_path / "junk.jpg", "-o", tmp_path / "out", "--model", weights["box"]], capsys)
    assert code == 1 and "junk.jpg" in one_line_error(err) and "object at 0x" not in err


# -- 9: a malicious checkpoint is refused without torch's warnings ------------------------------


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_malicious_pickle_refused_without_warnings(tmp_path, capsys):
    import pickle

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"a": _Evil()}, protocol=4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out, err = run(["encode", photo(tmp_path / "p.png"), "-o", tmp_path / "t", "--model", evil], capsys)
    assert [str(w.message) for w in caught] == []
    assert code == 2 and "pickled code" in one_line_error(err) and "pwned" not in out
    assert files(tmp_path / "t") == []


# -- 12: the output folder is checked before any model work ------------------------------------


def test_output_that_is_a_file_says_not_a_directory(tmp_path, weights, capsys):
    (tmp_path / "out").write_text("a file")
    code, _, err = run(["encode", photo(tmp_path / "p.png"), "-o", tmp_path / "out", "--model", weights["box"]], capsys)
    assert code == 2 and "not a directory" in one_line_error(err)
    sub = tmp_path / "out" / "sub"
    code, _, err = run(["encode", tmp_path / "p.png", "-o", sub, "--model", weights["box"]], capsys)
    assert code == 2 and "not a directory" in one_line_error(err)


def test_unwritable_output_folder_found_before_the_model_runs(tmp_path, weights, capsys, monkeypatch):
    out = tmp_path / "ro"
    out.mkdir()
    monkeypatch.setattr(sain.commands.common.os, "access", lambda p, mode: Path(p) != out)
    ran = []
    monkeypatch.setattr(sain.zoo, "get_model", lambda *a, **k: ran.append(1))
    for command in ("encode", "decode", "roundtrip"):
        code, _, err = run([command, photo(tmp_path / "p.png"), "-o", out, "--model", weights["box"]], capsys)
        line = one_line_error(err)
        assert code == 2 and f"output folder {out} is not writable" in line and ".tmp" not in line
    assert ran == [] and files(out) == []


def test_write_errors_name_the_file_not_the_temporary(tmp_path, monkeypatch):
    import builtins

    real_open = builtins.open

    def refuse(file, *a, **k):
        if str(file).endswith(".tmp"):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *a, **k)

    monkeypatch.setattr(builtins, "open", refuse)
    with pytest.raises(PermissionError) as e:
        sain.fileio.write_bytes_atomic(tmp_path / "x.jpg", b"data")
    assert e.value.filename == str(tmp_path / "x.jpg") and files(tmp_path) == []


# -- 10: no inputs ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["encode", "decode", "roundtrip"])
def test_empty_input_folder_is_a_usage_error(tmp_path, weights, capsys, command):
    (tmp_path / "empty").mkdir()
    code, out, err = run([command, tmp_path / "empty", "-o", tmp_path / "out", "--model", weights["box"]], capsys)
    assert code == 2 and "no images found in" in one_line_error(err) and str(tmp_path / "empty") in err
    assert out == "" and not (tmp_path / "out").exists()


# -- 13: --skip-existing -------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["encode", "decode", "roundtrip"])
def test_skip_existing_resumes_a_batch(tmp_path, weights, capsys, command):
    src = tmp_path / "in"
    src.mkdir()
    for k in range(2):
        photo(src / f"p{k}.png", seed=k)
    if command == "decode":
        assert run(["encode", src, "-o", tmp_path / "th", "--model", weights["box"], "-q"], capsys)[0] == 0
        src = tmp_path / "th"
    out = tmp_path / "out"
    argv = [command, src, "-o", out, "--model", weights["box"], "-q"]
    first = sorted(src.iterdir())[0]
    assert run([command, first, "-o", out, "--model", weights["box"], "-q"], capsys)[0] == 0
    done = {p: p.read_bytes() for p in out.iterdir()}
    code, out_text, err = run(argv[:-1] + ["--skip-existing"], capsys)
    assert code == 0, err
    assert f"skipped {first}" in err and len(err.strip().splitlines()) == 1
    assert {p: p.read_bytes() for p in done} == done and len(files(out)) == 2 * len(done)
    code, _, err = run(argv, capsys)
    assert code == 1 and "exists" in err  # without the option, as before
    code, _, err = run(argv + ["--skip-existing", "--force"], capsys)
    assert code == 2 and "contradict" in err


# -- 11: a minimum tile size -------------------------------------------------------------------


@pytest.mark.parametrize("command", ["encode", "decode", "roundtrip"])
def test_tile_below_the_minimum_is_a_usage_error(tmp_path, weights, capsys, command):
    src = photo(tmp_path / "p.png")
    code, _, err = run([command, src, "-o", tmp_path / "out", "--model", weights["box"], "--tile", "16"], capsys)
    assert code == 2 and "at least 64 LR pixels" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
    code, _, err = run([command, src, "-o", tmp_path / "out", "--model", weights["box"], "--tile", "64"], capsys)
    assert code in (0, 1) and "at least" not in err


# -- 14: roundtrip: readable table, honest bytes, all-or-nothing outputs -----------------------


def test_roundtrip_table_columns_never_collide(tmp_path, weights, capsys):
    src = photo(tmp_path / "t.png", 4, 2)  # tiny: hundreds of bits per pixel
    code, out, err = run(["roundtrip", src, "-o", tmp_path / "o", "--model", weights["box"]], capsys)
    assert code == 0, err
    lines = [ln for ln in out.splitlines() if ln.startswith(("method", "bicubic", "box"))]
    assert len(lines) == 3 and all(len(ln.split()) == 6 + (ln.startswith("method")) for ln in lines)
    ends = {len(ln) for ln in lines}
    assert len(ends) == 1  # right-aligned columns of one width


def test_roundtrip_at_quality_100_says_when_bytes_cannot_match(tmp_path, weights, capsys):
    from sain.compare import Restored, RoundtripResult

    img = torch.zeros(3, 8, 8)
    r = RoundtripResult(
        img,
        2,
        "jpeg",
        100,
        Restored("sain", 100, 106_596, img, 30.0, 0.9),
        Restored("bicubic", 100, 71_691, img, 29.0, 0.9),
    )
    assert "bicubic's largest file is 71,691 bytes < SAIN's 106,596" in r.table()
    r.bicubic.bytes = 106_000
    r.bicubic.quality = 97
    assert "note" not in r.table()


def test_roundtrip_outputs_all_or_nothing(tmp_path, weights, capsys, monkeypatch):
    import sain.compare

    src = photo(tmp_path / "p.png")
    real = sain.compare.write_image
    calls = []

    def fail_third(path, *a, **k):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real(path, *a, **k)

    monkeypatch.setattr(sain.compare, "write_image", fail_third)
    code, _, err = run(["roundtrip", src, "-o", tmp_path / "o", "--model", weights["box"]], capsys)
    assert code == 1 and "No space left" in one_line_error(err)
    assert files(tmp_path / "o") == []  # no partial set, no temporaries
    monkeypatch.setattr(sain.compare, "write_image", real)
    code, _, err = run(["roundtrip", src, "-o", tmp_path / "o", "--model", weights["box"]], capsys)
    assert code == 0 and len(files(tmp_path / "o")) == 4


# -- 15: the README's Python example runs as written -------------------------------------------


def test_readme_python_example_runs_as_written(tmp_path, monkeypatch):
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = readme.split("```python\n", 1)[1].split("```", 1)[0]
    assert 'sain.encode_file("photo.png", "thumbs/")' in block and "clamp" in block
    monkeypatch.chdir(tmp_path)
    photo(tmp_path / "photo.png", 40, 30)
    (tmp_path / "thumbs").mkdir()  # an existing folder works as well as a new one
    block = block.replace("torch.rand(1, 3, 256, 256)", "torch.rand(1, 3, 32, 32)")  # same code, faster
    exec(compile(block, "README.md", "exec"), {})
    assert files(tmp_path / "thumbs") == ["photo.jpg"] and files(tmp_path / "restored") == ["photo.png"]
    assert Image.open(tmp_path / "restored" / "photo.png").size == (40, 30)


def test_encode_file_into_a_new_folder(tmp_path, weights):
    src = photo(tmp_path / "p.png")
    r = api.encode_file(src, f"{tmp_path}/new/", weights["box"])
    assert r.dst == tmp_path / "new" / "p.jpg" and r.dst.is_file()


def _headline() -> dict[str, str]:
    """The README's two headline bullets, by their bold label."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("## Bundled model", 1)[1].split("\n## ", 1)[0]
    bullets = [b for b in section.split("\n- ")[1:] if b.startswith("**")]
    return {b[2:].split("**", 1)[0]: " ".join(b.split()) for b in bullets}


# -- 16: the README's headline says which comparison each number is ---------------------------


def test_readme_headline_states_each_comparison_and_its_command():
    bullets = _headline()
    same_bytes, same_quality = bullets["Same bytes"], bullets["Same JPEG quality"]
    assert "make demo" in same_bytes and "sain roundtrip" in same_bytes
    assert "model-card" in same_quality and "larger" in same_quality  # it says SAIN's files are larger then
    gains = [float(g) for g in re.findall(r"\+(\d+\.\d+)", same_bytes.split(" dB")[0])]
    assert len(gains) == 4 and gains == sorted(gains)  # kodim23 at quality 30, 50, 70, 90


@pytest.mark.slow
def test_readme_same_bytes_numbers_are_what_make_demo_prints(tmp_path, capsys):
    """The same-bytes gains of the headline are the demo's, to the printed 0.01 dB (+-0.02: bf16)."""
    code, out, err = run(["demo", "-o", tmp_path], capsys)
    assert code == 0, err
    measured = [float(line.split()[-1]) for line in out.splitlines() if line.strip()[:2] in ("30", "50", "70", "90")]
    claimed = [float(g) for g in re.findall(r"\+(\d+\.\d+)", _headline()["Same bytes"].split(" dB")[0])]
    assert measured == pytest.approx(claimed, abs=0.02)


# -- 6: grayscale in, grayscale out ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["L", "equal RGB"])
def test_grayscale_photo_comes_back_grayscale(tmp_path, weights, capsys, kind):
    g = np.random.default_rng(3).integers(0, 256, (20, 24), dtype=np.uint8)
    img = Image.fromarray(g) if kind == "L" else Image.fromarray(np.dstack([g, g, g]))
    img.save(tmp_path / "g.png")
    code, _, err = run(["encode", tmp_path / "g.png", "-o", tmp_path / "t", "--model", weights["box"]], capsys)
    assert code == 0, err
    assert api.read_info(tmp_path / "t" / "g.jpg").gray is True
    text = Image.open(tmp_path / "t" / "g.jpg").getexif()[0x010E]
    assert '"gray": true' in text
    code, _, err = run(["decode", tmp_path / "t" / "g.jpg", "-o", tmp_path / "r", "--model", weights["box"]], capsys)
    assert code == 0, err
    out = Image.open(tmp_path / "r" / "g.png")
    assert out.mode == "L" and out.size == (24, 20)
    x = api.decode_image(tmp_path / "t" / "g.jpg", weights["box"])
    assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])


def test_colour_photo_metadata_unchanged(tmp_path, weights):
    data, info = api.encode_image(torch.rand(3, 20, 24), weights["box"])
    assert info.gray is False and '"gray"' not in info.to_text()


@pytest.mark.parametrize(
    "value, message",
    [
        (float("nan"), "NaN or infinite"),
        (float("inf"), "NaN or infinite"),
        (255.0, "got 0..255 (8-bit values? divide by 255)"),
        (-0.5, "expected values in [0, 1], got -0.5.."),
    ],
)
def test_encode_image_refuses_values_that_are_not_an_image_in_0_1(weights, value, message):
    """From Python a 0..255 float image or one with NaNs would otherwise give a silently
    wrong thumbnail; rounding a hair outside [0, 1] is still accepted."""
    hr = torch.rand(3, 20, 24) * 0.5
    hr[0, 0, 0] = value
    if value == 255.0:
        hr[1, 0, 0] = 0.0
    with pytest.raises(ValueError, match=re.escape(message)):
        api.encode_image(hr, weights["box"])
    api.encode_image(torch.rand(3, 20, 24).clamp(0, 1) * 1.005 - 0.002, weights["box"])


# -- 7: transparency and animation ---------------------------------------------------------------


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparency_is_composited_with_a_note(tmp_path, weights, capsys, mode):
    a = np.zeros((20, 24, 4), np.uint8)
    a[..., 0] = 200  # red where opaque
    a[:, :12, 3] = 255  # left half opaque, right half fully transparent
    img = Image.fromarray(a, "RGBA")
    if mode == "LA":
        img = img.convert("LA")
    elif mode == "P":
        img = img.convert("P")  # transparency kept as a palette entry
        img.info["transparency"] = img.getpixel((20, 5))
    img.save(tmp_path / "t.png")
    x = sain.imaging.photo.read_photo(tmp_path / "t.png")
    assert x.image[:, :, 12:].min() == 1.0  # transparent -> white
    assert any("transparency composited onto white" in n for n in x.notes)
    code, _, err = run(["encode", tmp_path / "t.png", "-o", tmp_path / "o", "--model", weights["box"]], capsys)
    assert code == 0 and "note:" in err and "transparency" in err
    black = sain.imaging.photo.read_photo(tmp_path / "t.png", background=sain.imaging.photo.parse_color("black"))
    assert black.image[:, :, 12:].max() == 0.0
    code, _, err = run(["encode", tmp_path / "t.png", "-o", tmp_path / "o2", "--background", "nope"], capsys)
    assert code == 2 and "not a colour" in err


def test_opaque_alpha_is_dropped_silently(tmp_path):
    a = np.full((20, 24, 4), 255, np.uint8)
    Image.fromarray(a, "RGBA").save(tmp_path / "o.png")
    assert sain.imaging.photo.read_photo(tmp_path / "o.png").notes == []


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animated_input_refused_or_a_frame_chosen(tmp_path, weights, capsys, fmt):
    if fmt == "WEBP" and "webp" not in sain.codecs.available_formats():
        pytest.skip("Pillow without WebP")
    frames = [Image.fromarray(np.full((20, 24, 3), v, np.uint8)) for v in (30, 120, 220)]
    path = tmp_path / f"anim.{fmt.lower()}"
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    code, _, err = run(["encode", path, "-o", tmp_path / "o", "--model", weights["box"]], capsys)
    line = one_line_error(err)
    assert code == 1 and "3 frames" in line and "--frame" in line and files(tmp_path / "o") == []
    code, _, err = run(["encode", path, "-o", tmp_path / "o", "--model", weights["box"], "--frame", "2"], capsys)
    assert code == 0, err
    lr = np.asarray(Image.open(tmp_path / "o" / "anim.jpg").convert("L"), dtype=np.float64)
    assert abs(lr.mean() - 220) < 8  # the third frame, not the first
    code, _, err = run(
        ["encode", path, "-o", tmp_path / "o", "--model", weights["box"], "--frame", "3", "--force"], capsys
    )
    assert code == 1 and "no frame 3" in one_line_error(err)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_decode_refuses_an_animated_thumbnail(tmp_path, weights, capsys, fmt):
    """A thumbnail is one picture: restoring only the first frame of an animation, silently,
    would hand back a different image than the one the user sent."""
    if fmt == "WEBP" and "webp" not in sain.codecs.available_formats():
        pytest.skip("Pillow without WebP")
    frames = [Image.fromarray(np.full((12, 10, 3), v, np.uint8)) for v in (30, 120, 220)]
    path = tmp_path / f"anim.{fmt.lower()}"
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    before = path.read_bytes()
    code, _, err = run(["decode", path, "-o", tmp_path / "o", "--model", weights["box"]], capsys)
    line = one_line_error(err)
    assert code == 1 and "animated or multi-page (3 frames)" in line and files(tmp_path / "o") == []
    assert path.read_bytes() == before
    frames[0].save(tmp_path / "still.gif")
    code, _, err = run(["decode", tmp_path / "still.gif", "-o", tmp_path / "o", "--model", weights["box"]], capsys)
    assert code == 0, err


# -- 2: colour profiles and metadata (EXIF, XMP) -------------------------------------------------------------------


def display_p3_icc() -> bytes:
    """A minimal ICC v2 matrix/TRC profile with Display-P3 primaries (D50-adapted), gamma 2.2."""
    import struct

    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + b"\0" * 4 + s15(x) + s15(y) + s15(z)

    text = b"Display P3 (test)\0"
    desc = b"desc" + b"\0" * 4 + struct.pack(">I", len(text)) + text + b"\0" * 12 + b"\0" * 67
    curve = b"curv" + b"\0" * 4 + struct.pack(">I", 1) + struct.pack(">H", round(2.2 * 256)) + b"\0\0"
    tags = [
        (b"desc", desc),
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(0.5151, 0.2412, -0.0011)),
        (b"gXYZ", xyz(0.2920, 0.6922, 0.0419)),
        (b"bXYZ", xyz(0.1571, 0.0666, 0.7841)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data + b"\0" * (-len(data) % 4)
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + b"none"
        + bytes([2, 0x10, 0, 0])
        + b"mntrRGB XYZ "
        + b"\0" * 12
        + b"acsp"
        + b"\0" * 24
        + struct.pack(">I", 0)
        + s15(0.9642)
        + s15(1.0)
        + s15(0.8249)
        + b"\0" * 48
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def p3_photos(d: Path) -> tuple[Path, Path]:
    """A Display-P3 PNG of saturated red and the same values untagged."""
    a = np.zeros((20, 24, 3), np.uint8)
    a[..., 0] = 230  # a saturated P3 red: outside sRGB's gamut, so its sRGB values differ
    a[..., 1] = 40
    a[:, 12:, 2] = 90
    Image.fromarray(a).save(d / "p3.png", icc_profile=display_p3_icc())
    Image.fromarray(a).save(d / "plain.png")
    return d / "p3.png", d / "plain.png"


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.int16)


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "avif"])
def test_icc_profile_is_carried_and_the_stored_values_used(tmp_path, weights, capsys, fmt):
    if fmt not in sain.codecs.available_formats():
        pytest.skip(f"Pillow without {fmt}")
    p3, plain = p3_photos(tmp_path)
    ph = sain.imaging.photo.read_photo(p3)
    assert ph.metadata.icc == display_p3_icc() and ph.notes == []
    assert torch.equal(ph.image, sain.imaging.photo.read_photo(plain).image)  # the raw values
    suffix = api.SUFFIXES[fmt]
    for src in (p3, plain):
        code, _, err = run(["encode", src, "-o", tmp_path / "t", "--model", weights["box"], "--format", fmt], capsys)
        assert code == 0 and err == "", err
        code, _, err = run(["decode", tmp_path / "t" / f"{src.stem}.{suffix}", "-o", tmp_path / "r"], capsys)
        assert code == 1 and "sha256:" in err  # (a file model: see test_file_model_is_recorded_by_its_hash)
    code, _, err = run(["decode", tmp_path / "t", "-o", tmp_path / "r", "--model", weights["box"]], capsys)
    assert code == 0, err
    thumb, restored = Image.open(tmp_path / "t" / f"p3.{suffix}"), Image.open(tmp_path / "r" / "p3.png")
    restored.load()
    assert thumb.info["icc_profile"] == display_p3_icc() and restored.info["icc_profile"] == display_p3_icc()
    assert "icc_profile" not in Image.open(tmp_path / "t" / f"plain.{suffix}").info
    assert np.array_equal(pixels(tmp_path / "t" / f"p3.{suffix}"), pixels(tmp_path / "t" / f"plain.{suffix}"))
    assert np.array_equal(pixels(tmp_path / "r" / "p3.png"), pixels(tmp_path / "r" / "plain.png"))


def test_icc_convert_srgb_converts_and_writes_no_profile(tmp_path, weights, capsys):
    p3, plain = p3_photos(tmp_path)
    ph = sain.imaging.photo.read_photo(p3, icc="convert-srgb")
    base = sain.imaging.photo.read_photo(plain)
    assert any("Display P3 (test)" in n and "sRGB" in n for n in ph.notes) and ph.metadata.icc is None
    assert (ph.image - base.image).abs().max() > 10 / 255  # converted, not the raw values
    assert ph.image[0].mean() > ph.image[1].mean()  # still red
    box = weights["box"]
    code, _, err = run(["encode", p3, "-o", tmp_path / "t", "--model", box, "--icc", "convert-srgb"], capsys)
    assert code == 0 and "converted from its colour profile" in err
    assert run(["encode", plain, "-o", tmp_path / "t", "--model", box], capsys)[0] == 0
    assert "icc_profile" not in Image.open(tmp_path / "t" / "p3.jpg").info
    assert np.abs(pixels(tmp_path / "t" / "p3.jpg") - pixels(tmp_path / "t" / "plain.jpg")).max() > 10
    code, _, err = run(["decode", tmp_path / "t" / "p3.jpg", "-o", tmp_path / "r", "--model", box], capsys)
    assert code == 0, err
    restored = Image.open(tmp_path / "r" / "p3.png")
    restored.load()
    assert "icc_profile" not in restored.info
    code, _, err = run(["encode", p3, "-o", tmp_path / "t2", "--model", box, "--icc", "nope"], capsys)
    assert code == 2 and "--icc" in err and files(tmp_path / "t2") == []
    with pytest.raises(ValueError, match="icc must be one of keep, convert-srgb"):
        api.encode_file(p3, tmp_path / "t2" / "x.jpg", box, icc="srgb")


def test_roundtrip_tags_its_outputs_with_the_profile(tmp_path, weights, capsys):
    p3, _ = p3_photos(tmp_path)
    code, _, err = run(["roundtrip", p3, "-o", tmp_path / "o", "--model", weights["box"]], capsys)
    assert code == 0, err
    for name in ("p3.jpg", "p3.png", "p3.bicubic.png", "p3.compare.png"):
        img = Image.open(tmp_path / "o" / name)
        img.load()
        assert img.info.get("icc_profile") == display_p3_icc(), name


def camera_jpeg(path: Path, description: str = "my holiday") -> Path:
    """A JPEG with camera, date, GPS, orientation 6, an ImageDescription and XMP."""
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "EOS 5D"
    exif[0x010E] = description
    exif[0x0112] = 6  # orientation: rotate 90 (applied, never copied)
    exif.get_ifd(0x8769)[0x9003] = "2021:06:01 12:34:56"
    exif.get_ifd(0x8825)[0x0002] = (48.0, 51.0, 24.0)  # GPS latitude
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/"'
        b' tiff:Orientation="6"><dc:creator>A. Photographer</dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>'
    )
    Image.fromarray(np.full((20, 24, 3), 128, np.uint8)).save(path, exif=exif, xmp=xmp, quality=95)
    return path


def tags(path: Path) -> tuple[Image.Exif, bytes]:
    img = Image.open(path)
    img.load()
    xmp = img.info.get("xmp") or b""
    return img.getexif(), xmp if isinstance(xmp, bytes) else xmp.encode()


def test_metadata_is_stripped_by_default(tmp_path, weights, capsys):
    src = camera_jpeg(tmp_path / "c.jpg")
    code, _, err = run(["encode", src, "-o", tmp_path / "t", "--model", weights["box"]], capsys)
    assert code == 0 and err == "", err
    th = Image.open(tmp_path / "t" / "c.jpg")
    assert th.size == (10, 12)  # orientation applied (24x20 rotated)
    te, txmp = tags(tmp_path / "t" / "c.jpg")
    assert set(te) == {0x010E} and te[0x010E].startswith("sain:v1 ") and txmp == b""  # only sain's own
    assert not te.get_ifd(0x8825) and not te.get_ifd(0x8769)
    code, _, err = run(["decode", tmp_path / "t" / "c.jpg", "-o", tmp_path / "r", "--model", weights["box"]], capsys)
    assert code == 0, err
    oe, oxmp = tags(tmp_path / "r" / "c.png")
    assert len(oe) == 0 and oxmp == b""


@pytest.mark.parametrize("command", ["encode", "roundtrip"])
def test_keep_metadata_copies_exif_and_xmp_but_never_orientation(tmp_path, weights, capsys, command):
    # a description that claims to be sain metadata (and is malformed) must not break decoding
    src = camera_jpeg(tmp_path / "c.jpg", description='sain:v1 {"model": "/etc/passwd"')
    before = src.read_bytes()
    code, _, err = run([command, src, "-o", tmp_path / "t", "--model", weights["box"], "--keep-metadata"], capsys)
    assert code == 0, err
    assert "ImageDescription is not kept" in err and err.count("\n") == 1
    if command == "encode":
        code, _, err = run(
            ["decode", tmp_path / "t" / "c.jpg", "-o", tmp_path / "t", "--model", weights["box"]], capsys
        )
        assert code == 0, err
    assert api.read_info(tmp_path / "t" / "c.jpg").width == 20  # the thumbnail's own metadata wins
    for out in (tmp_path / "t" / "c.jpg", tmp_path / "t" / "c.png"):  # the thumbnail and the restored photo
        e, xmp = tags(out)
        assert e[0x010F] == "Canon" and e[0x0110] == "EOS 5D" and 0x0112 not in e, out
        assert e.get_ifd(0x8769)[0x9003] == "2021:06:01 12:34:56", out
        assert e.get_ifd(0x8825)[0x0002] == (48.0, 51.0, 24.0), out  # GPS: kept, as asked
        assert b"A. Photographer" in xmp and b"Orientation" not in xmp, out
    assert 0x010E not in tags(tmp_path / "t" / "c.png")[0]  # neither sain's metadata nor the user's
    assert src.read_bytes() == before


def test_keep_metadata_leaves_out_what_a_jpeg_cannot_hold(tmp_path, weights, capsys):
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif.get_ifd(0x8769)[0x927C] = bytes(70_000)  # a maker note larger than a JPEG marker
    exif.get_ifd(0x8825)[0x0002] = (48.0, 51.0, 24.0)
    big_xmp = PngImagePlugin.PngInfo()
    big_xmp.add_itxt("XML:com.adobe.xmp", '<x:xmpmeta xmlns:x="adobe:ns:meta/">' + " " * 70_000 + "</x:xmpmeta>")
    Image.fromarray(np.full((20, 24, 3), 90, np.uint8)).save(tmp_path / "m.png", exif=exif, pnginfo=big_xmp)
    argv = ["encode", tmp_path / "m.png", "-o", tmp_path / "t", "--model", weights["box"], "--keep-metadata"]
    code, _, err = run(argv, capsys)
    assert code == 0 and "maker note is too large" in err and "XMP is too large" in err, err
    e, xmp = tags(tmp_path / "t" / "m.jpg")
    assert e[0x010F] == "Canon" and e.get_ifd(0x8825)[0x0002] == (48.0, 51.0, 24.0) and xmp == b""
    assert 0x927C not in e.get_ifd(0x8769)
    # a TIFF's IFD0 is its EXIF: its pixel layout (size, strips, compression) is not copied
    Image.fromarray(np.full((20, 24, 3), 90, np.uint8)).save(tmp_path / "s.tif", exif=exif, compression="tiff_lzw")
    argv = ["encode", tmp_path / "s.tif", "-o", tmp_path / "t", "--model", weights["box"], "--keep-metadata"]
    code, _, err = run(argv, capsys)
    assert code == 0, err
    e, _ = tags(tmp_path / "t" / "s.jpg")
    assert e[0x010F] == "Canon" and not {0x0100, 0x0101, 0x0103, 0x0111, 0x0117} & set(e)


# -- 7: alpha: kept in WebP / AVIF thumbnails, composited for JPEG ------------------------------


def rgba_photo(path: Path, mode: str = "RGBA") -> tuple[Path, np.ndarray]:
    """A 24x20 photo whose alpha ramps from opaque (left) to transparent (right)."""
    rng = np.random.default_rng(5)
    a = np.dstack([rng.integers(0, 256, (20, 24, 3), dtype=np.uint8), np.zeros((20, 24), np.uint8)])
    a[..., 3] = np.linspace(255, 0, 24).round().astype(np.uint8)[None, :]
    img = Image.fromarray(a)
    if mode == "LA":
        img = img.convert("LA")
    img.save(path)
    return path, np.asarray(img.getchannel("A"), dtype=np.int16)


@pytest.mark.parametrize("fmt", ["webp", "avif"])
@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_kept_in_webp_and_avif(tmp_path, weights, capsys, fmt, mode):
    if fmt not in sain.codecs.available_formats():
        pytest.skip(f"Pillow without {fmt}")
    src, alpha = rgba_photo(tmp_path / "a.png", mode)
    code, _, err = run(["encode", src, "-o", tmp_path / "t", "--model", weights["box"], "--format", fmt], capsys)
    assert code == 0 and "composited" not in err, err
    thumb = Image.open(tmp_path / "t" / f"a.{api.SUFFIXES[fmt]}")
    assert thumb.mode == "RGBA" and thumb.size == (12, 10)
    lr_alpha = np.asarray(thumb.getchannel("A"), dtype=np.int16)
    assert np.abs(lr_alpha - alpha[::2, ::2]).max() < 20  # the alpha at the LR size (a ramp)
    code, _, err = run(["decode", thumb.filename, "-o", tmp_path / "r", "--model", weights["box"]], capsys)
    assert code == 0, err
    out = Image.open(tmp_path / "r" / "a.png")
    assert out.mode == ("RGBA" if mode == "RGBA" else "LA") and out.size == (24, 20)
    assert np.abs(np.asarray(out.getchannel("A"), dtype=np.int16) - alpha).max() <= 12


def test_alpha_is_composited_for_jpeg_with_a_note(tmp_path, weights, capsys):
    src, _ = rgba_photo(tmp_path / "a.png")
    code, _, err = run(["encode", src, "-o", tmp_path / "t", "--model", weights["box"]], capsys)
    assert code == 0 and "note:" in err and "composited onto white" in err and "WebP and AVIF" in err
    assert Image.open(tmp_path / "t" / "a.jpg").mode == "RGB"
    code, _, err = run(["decode", tmp_path / "t" / "a.jpg", "-o", tmp_path / "r", "--model", weights["box"]], capsys)
    assert code == 0 and Image.open(tmp_path / "r" / "a.png").mode == "RGB"
    hr = sain.imaging.read_image(src)
    with pytest.raises(ValueError, match="JPEG thumbnail has no alpha channel"):
        api.encode_image(hr, weights["box"], "jpeg", alpha=torch.ones(20, 24))


# -- 5: a weight file is recorded by its hash, never its path --------------------------------------


def test_file_model_is_recorded_by_its_hash(tmp_path, weights, capsys):
    src = photo(tmp_path / "p.png")
    code, _, err = run(["encode", src, "-o", tmp_path / "t", "--model", weights["box"]], capsys)
    assert code == 0, err
    thumb = tmp_path / "t" / "p.jpg"
    digest = sain.zoo.file_sha256(weights["box"])
    assert api.read_info(thumb).model == f"sha256:{digest[:16]}"
    assert str(weights["box"]).encode() not in thumb.read_bytes() and b'"box"' not in thumb.read_bytes()
    code, _, err = run(["decode", thumb, "-o", tmp_path / "r"], capsys)
    line = one_line_error(err)
    assert code == 1 and f"sha256:{digest[:16]}" in line and "--model FILE" in line and files(tmp_path / "r") == []
    code, _, err = run(["decode", thumb, "-o", tmp_path / "r", "--model", weights["box"]], capsys)
    assert code == 0 and err == "", err  # the hash matches: no note
    torch.manual_seed(1)
    other = sain.save_weights(sain.SAIN(2, e_blocks=1, v_blocks=0), tmp_path / "other.safetensors")
    code, _, err = run(["decode", thumb, "-o", tmp_path / "r2", "--model", other], capsys)
    other_id = f"sha256:{sain.zoo.file_sha256(other)[:16]}"
    assert code == 0 and "note:" in err and f"made with model sha256:{digest[:16]}" in err and other_id in err
    # the bundled file given by its path is named by its zoo name
    bundled = sain.zoo.ZOO["sain-x2-jpeg"].path
    assert sain.thumbnail.model_id(sain.thumbnail.load_coder(str(bundled))) == "sain-x2-jpeg"


# -- the corpus: every kind of input above, plus the ones handled before ---------------------------


def _corpus(d: Path) -> dict[str, tuple[Path, bool]]:
    """name -> (file, whether encode must succeed); all generated here, all tiny."""
    rng = np.random.default_rng(7)
    rgb = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    c: dict[str, tuple[Path, bool]] = {}

    def save(name: str, img: Image.Image, ok: bool = True, **kw) -> None:
        img.save(d / name, **kw)
        c[name] = (d / name, ok)

    def raw(name: str, data: bytes, ok: bool = False) -> None:
        (d / name).write_bytes(data)
        c[name] = (d / name, ok)

    base = Image.fromarray(rgb)
    save("rgb.png", base)
    save("odd.png", Image.fromarray(rgb[:7, :5]))
    save("one.png", Image.fromarray(rgb[:1, :1]), ok=False)  # smaller than the scale
    save("tall.png", Image.fromarray(rng.integers(0, 256, (300, 2, 3), dtype=np.uint8)))
    save("upper.PNG", base, format="PNG")
    save("with space é.png", base)
    save("gray.png", base.convert("L"))
    save("gray.jpg", base.convert("L"), quality=90)
    save("bilevel.png", base.convert("1"))
    save("palette.png", base.convert("P"))
    save("cmyk.jpg", base.convert("CMYK"), quality=90)
    save("progressive.jpg", base, quality=80, progressive=True)
    save("baseline.jpg", base, quality=80)
    save("rgba.png", Image.fromarray(np.dstack([rgb, np.full((20, 24), 128, np.uint8)])))
    save("la.png", base.convert("LA"))
    save("bmp.bmp", base)
    save("tiff.tif", base)
    save("g16.png", Image.fromarray(rgb[..., 0].astype(np.uint16) * 257))
    save("g16.tif", Image.fromarray(rgb[..., 0].astype(np.uint16) * 257))
    save("f01.tif", Image.fromarray(rgb[..., 0].astype(np.float32) / 255, mode="F"))
    save("f255.tif", Image.fromarray(rgb[..., 0].astype(np.float32), mode="F"))
    save("fbad.tif", Image.fromarray(np.full((20, 24), -5.0, np.float32), mode="F"), ok=False)
    save("p3.png", base, icc_profile=display_p3_icc())
    for o in range(1, 9):
        e = Image.Exif()
        e[0x0112] = o
        save(f"orient{o}.jpg", base, exif=e, quality=90)
    gps = Image.Exif()
    gps.get_ifd(0x8825)[0x0002] = (1.0, 2.0, 3.0)
    save("gps.jpg", base, exif=gps)
    frames = [Image.fromarray(np.full((20, 24, 3), v, np.uint8)) for v in (10, 200)]
    frames[0].save(d / "anim.gif", save_all=True, append_images=frames[1:], duration=50)
    c["anim.gif"] = (d / "anim.gif", False)
    save("still.gif", base.convert("P"))
    if "webp" in sain.codecs.available_formats():
        save("lossless.webp", base, lossless=True)
        frames[0].save(d / "anim.webp", save_all=True, append_images=frames[1:], duration=50)
        c["anim.webp"] = (d / "anim.webp", False)
    raw("empty.png", b"")
    raw("text.jpg", b"hello, not a photo\n")
    raw("random.png", rng.integers(0, 256, 500, dtype=np.uint8).tobytes())
    raw("truncated.png", (d / "rgb.png").read_bytes()[:60])
    raw("truncated.jpg", (d / "baseline.jpg").read_bytes()[:200])
    huge_png(d / "huge.png", 10001, 10000)
    c["huge.png"] = (d / "huge.png", False)
    (d / "folder.png").mkdir()
    c["folder.png"] = (d / "folder.png", False)
    c["missing.png"] = (d / "missing.png", False)
    return c


def test_corpus_of_inputs(tmp_path, weights, capsys):
    src = tmp_path / "in"
    src.mkdir()
    corpus = _corpus(src)
    assert len(corpus) >= 40
    before = {p: p.read_bytes() for p, _ in corpus.values() if p.is_file()}
    for k, (path, ok) in enumerate(corpus.values()):
        out = tmp_path / f"out{k}"
        code, stdout, err = run(["encode", path, "-o", out, "--model", weights["box"]], capsys)
        assert "Traceback" not in err and "Warning" not in err, (path.name, err)
        assert all(line.startswith("sain encode: ") for line in err.strip().splitlines()), (path.name, err)
        left = files(out)
        if ok:
            assert code == 0, (path.name, err)
            assert left == [f"{path.stem}.jpg"], (path.name, left)
            restored = tmp_path / f"restored{k}"
            code, _, err = run(["decode", out / left[0], "-o", restored, "--model", weights["box"]], capsys)
            assert code == 0 and files(restored) == [f"{path.stem}.png"], (path.name, err)
        else:
            assert code in (1, 2), (path.name, code, err)
            assert len(err.strip().splitlines()) == 1, (path.name, err)
            assert path.name in err, (path.name, err)
            assert left == [], (path.name, left)  # no output, no temporary
    assert {p: p.read_bytes() for p in before} == before  # no input changed


def test_our_pixel_limit_replaces_pillows(tmp_path, monkeypatch):
    src = photo(tmp_path / "p.png", 30, 20)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow would call 600 pixels a bomb
    assert sain.imaging.read_image(src, max_pixels=10_000).shape == (3, 20, 30)
    with pytest.raises(
        sain.imaging.ImageReadError, match=r"30x20 = 600 pixels \(0.0006 megapixels\), above the limit of 599 "
    ) as e:
        sain.imaging.read_image(src, max_pixels=599)
    assert "\n" not in str(e.value)
    with pytest.raises(sain.imaging.ImageReadError, match="p.png") as e:
        sain.imaging.read_image(src)  # no limit of ours: Pillow's, as one line
    assert "\n" not in str(e.value) and Image.MAX_IMAGE_PIXELS == 100
