"""The user-facing commands (encode, decode, roundtrip, demo, models) and sain.api.

Every test uses tiny weight files written here; nothing depends on bundled weights.
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
import sain.codecs.real
import sain.pipeline
import sain.zoo
from sain import api
from sain.cli import main
from sain.codecs import available_formats
from sain.imaging import read_image
from sain.metrics import psnr
from sain.pipeline import ModelMethod

torch.set_num_threads(1)


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, Path]:
    """'tiny': a perturbed 1-E-block SAIN (every subnet active); 'box': fresh couplings (the
    identity) with a near-zero latent, i.e. box downscale + nearest upscale, which restores
    photos reasonably well, so quality checks mean something."""
    d = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    tiny = sain.SAIN(2, e_blocks=1, v_blocks=1)
    with torch.no_grad():
        for p in tiny.parameters():
            p.add_(0.01 * torch.randn_like(p))
    box = sain.SAIN(2, e_blocks=1, v_blocks=0)
    with torch.no_grad():
        box.gmm.gmm_para[2].fill_(-20)
    return {
        "tiny": sain.save_weights(tiny, d / "tiny.safetensors"),
        "box": sain.save_weights(box, d / "box.safetensors"),
    }


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("photos")
    sample = Image.open(api.SAMPLE_IMAGE).convert("RGB")
    out = {"odd": d / "odd.png", "gray": d / "gray.png", "big": d / "big.png"}
    sample.crop((300, 100, 337, 150)).save(out["odd"])  # 37 x 50
    sample.crop((400, 200, 451, 243)).convert("L").save(out["gray"])  # 51 x 43, grayscale
    sample.crop((260, 60, 388, 156)).save(out["big"])  # 128 x 96
    return out


def run(argv: list, capsys) -> tuple[int, str, str]:
    """``sain ARGV`` -> (exit code, stdout, stderr); argparse's exits included."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def file_id(weights: Path) -> str:
    """How a thumbnail names a model given as a weight file: its hash, never its path."""
    return "sha256:" + sain.zoo.file_sha256(weights)[:16]


# -- encode / decode ----------------------------------------------------------------------


def test_encode_decode_restores_exact_size(tmp_path, weights, photos, capsys):
    code, out, err = run(
        ["encode", photos["odd"], photos["gray"], "-o", tmp_path / "th", "--model", weights["tiny"]], capsys
    )
    assert code == 0, err
    assert "odd.jpg" in out and "bpp" in out and " s" in out
    assert files(tmp_path / "th") == ["gray.jpg", "odd.jpg"]
    assert Image.open(tmp_path / "th" / "odd.jpg").size == (19, 25)  # ceil(37/2) x ceil(50/2)

    info = api.read_info(tmp_path / "th" / "odd.jpg")
    assert info == api.ThumbnailInfo(model=file_id(weights["tiny"]), scale=2, width=37, height=50)
    text = Image.open(tmp_path / "th" / "gray.jpg").getexif()[0x010E]
    assert text.startswith("sain:v1 {") and json.loads(text[8:])["width"] == 51

    code, out, err = run(["decode", tmp_path / "th", "-o", tmp_path / "rs", "--model", weights["tiny"]], capsys)
    assert code == 0, err
    odd, gray = Image.open(tmp_path / "rs" / "odd.png"), Image.open(tmp_path / "rs" / "gray.png")
    assert (odd.size, odd.mode) == ((37, 50), "RGB")
    assert (gray.size, gray.mode) == ((51, 43), "L")  # grayscale in, grayscale out (issue 11)


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "avif"])
def test_formats_carry_metadata(tmp_path, weights, photos, capsys, fmt):
    if fmt not in available_formats():
        pytest.skip(f"Pillow without {fmt}")
    code, _, err = run(
        ["encode", photos["odd"], "-o", tmp_path, "--model", weights["tiny"], "--format", fmt, "--quality", "60"],
        capsys,
    )
    assert code == 0, err
    thumb = tmp_path / f"odd.{api.SUFFIXES[fmt]}"
    assert Image.open(thumb).format == {"jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF"}[fmt]
    assert api.read_info(thumb) == api.ThumbnailInfo(file_id(weights["tiny"]), 2, 37, 50)
    assert api.decode_image(thumb, weights["tiny"]).shape == (3, 50, 37)


def test_force(tmp_path, weights, photos, capsys):
    args = ["encode", photos["odd"], "-o", tmp_path, "--model", weights["tiny"]]
    assert run(args, capsys)[0] == 0
    thumb = tmp_path / "odd.jpg"
    before = thumb.read_bytes()
    code, _, err = run(args + ["--quality", "20"], capsys)
    assert code == 1 and str(thumb) in err and "--force" in err
    assert thumb.read_bytes() == before
    code, _, err = run(args + ["--quality", "20", "--force"], capsys)
    assert code == 0, err
    assert thumb.read_bytes() != before


def test_one_bad_file_among_good_ones(tmp_path, weights, photos, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (1, 5)).save(tiny)  # narrower than the scale
    code, out, err = run(
        [
            "encode",
            photos["odd"],
            bad,
            tiny,
            photos["gray"],
            tmp_path / "missing.png",
            "-o",
            tmp_path / "th",
            "--model",
            weights["tiny"],
        ],
        capsys,
    )
    assert code == 1
    lines = err.strip().splitlines()
    assert any("bad.png" in line for line in lines)
    assert any("tiny.png" in line and "smaller than the scale" in line for line in lines)
    assert any("missing.png" in line for line in lines)
    assert "Traceback" not in err
    assert files(tmp_path / "th") == ["gray.jpg", "odd.jpg"]  # no partial or temporary files


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "no-such-model"], "unknown model"),
        (["--quality", "0"], "quality"),
        (["--quality", "101"], "quality"),
        (["--quality", "high"], "quality"),
        (["--format", "gif"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2(tmp_path, photos, capsys, argv, message):
    code, _, err = run(["encode", photos["odd"], "-o", tmp_path] + argv, capsys)
    assert code == 2 and message in err and "Traceback" not in err
    assert files(tmp_path) == []


def test_unavailable_format_and_corrupt_checkpoint_exit_2(tmp_path, weights, photos, capsys, monkeypatch):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage")
    code, _, err = run(["encode", photos["odd"], "-o", tmp_path / "a", "--model", broken], capsys)
    assert code == 2 and "broken.safetensors" in err and len(err.strip().splitlines()) == 1

    monkeypatch.setattr(sain.codecs.real, "available_formats", lambda: ("jpeg", "png"))
    code, _, err = run(
        ["encode", photos["odd"], "-o", tmp_path / "a", "--format", "avif", "--model", weights["tiny"]], capsys
    )
    assert code == 2 and "avif" in err
    assert files(tmp_path / "a") == []


def test_decode_plain_jpeg_and_wrong_scale(tmp_path, weights, capsys):
    plain = tmp_path / "plain.jpg"
    Image.open(api.SAMPLE_IMAGE).convert("RGB").resize((21, 17)).save(plain, quality=80)
    code, _, err = run(["decode", plain, "-o", tmp_path / "a"], capsys)
    assert code == 1 and "no sain metadata" in err and "--model" in err
    assert files(tmp_path / "a") == []

    code, _, err = run(["decode", plain, "-o", tmp_path / "a", "--model", weights["tiny"], "--scale", "4"], capsys)
    assert code == 2 and "x2" in err and "--scale 4" in err

    code, _, err = run(["decode", plain, "-o", tmp_path / "a", "--model", weights["tiny"], "--scale", "2"], capsys)
    assert code == 0, err
    assert Image.open(tmp_path / "a" / "plain.png").size == (42, 34)

    code, _, err = run(["decode", plain, "-o", tmp_path / "b", "--model", weights["tiny"], "--size", "41x33"], capsys)
    assert code == 0, err
    assert Image.open(tmp_path / "b" / "plain.png").size == (41, 33)
    code, _, err = run(["decode", plain, "-o", tmp_path / "c", "--model", weights["tiny"], "--size", "50x33"], capsys)
    assert code == 1 and "cannot restore a 50x33" in err


def test_thumbnail_of_another_model_needs_it(tmp_path, weights, photos, capsys):
    run(["encode", photos["odd"], "-o", tmp_path, "--model", weights["tiny"]], capsys)
    for extra in ([], ["--scale", "2"]):  # --scale alone does not replace the recorded model
        code, _, err = run(["decode", tmp_path / "odd.jpg", "-o", tmp_path / "r"] + extra, capsys)
        assert code == 1 and file_id(weights["tiny"]) in err and "--model" in err
    x4 = sain.save_weights(sain.SAIN(4, e_blocks=1, v_blocks=0), tmp_path / "x4.safetensors")
    code, _, err = run(["decode", tmp_path / "odd.jpg", "-o", tmp_path / "r", "--model", x4], capsys)
    assert code == 1 and "x2" in err and "x4" in err
    assert files(tmp_path / "r") == []


def test_failed_write_leaves_nothing(tmp_path, weights, photos, capsys, monkeypatch):
    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(api.os, "fsync", disk_full)
    code, _, err = run(["encode", photos["odd"], "-o", tmp_path, "--model", weights["tiny"]], capsys)
    assert code == 1 and "No space left" in err
    assert files(tmp_path) == []


def test_output_may_name_the_file_for_one_input(tmp_path, weights, photos, capsys):
    tiny = ["--model", weights["tiny"]]
    code, _, err = run(["encode", photos["odd"], "-o", tmp_path / "sub" / "small.webp"] + tiny, capsys)
    assert code == 0, err
    assert Image.open(tmp_path / "sub" / "small.webp").format == "WEBP"  # the format follows the suffix
    code, _, err = run(["decode", tmp_path / "sub" / "small.webp", "-o", tmp_path / "big.png"] + tiny, capsys)
    assert code == 0, err
    assert Image.open(tmp_path / "big.png").size == (37, 50)
    code, _, err = run(["decode", tmp_path / "sub" / "small.webp", "-o", tmp_path / "big.png"] + tiny, capsys)
    assert code == 1 and "exists" in err  # nothing overwritten without --force

    for argv, message in [
        (["encode", photos["odd"], photos["gray"], "-o", tmp_path / "two.jpg"], "2 inputs"),
        (["encode", photos["odd"], "-o", tmp_path / "t.webp", "--format", "jpeg"], "--format jpeg"),
        (["encode", photos["odd"], "-o", tmp_path / "t.png"], ".jpg / .jpeg / .webp / .avif"),
        (["decode", tmp_path / "sub" / "small.webp", "-o", tmp_path / "r.jpg"], ".png"),
        (["roundtrip", photos["odd"], "-o", tmp_path / "r.png"], "give a folder"),
    ]:
        code, _, err = run(argv + tiny, capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (argv, err)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["big.png", "small.webp", "sub"]


def test_failed_batch_leaves_no_folder_behind(tmp_path, weights, photos, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    code, _, err = run(["encode", bad, "-o", tmp_path / "new" / "thumbs", "--model", weights["tiny"]], capsys)
    assert code == 1 and "bad.png" in err
    assert not (tmp_path / "new").exists()  # the folders it created, removed again
    (tmp_path / "kept").mkdir()
    code, _, err = run(["encode", bad, "-o", tmp_path / "kept" / "thumbs", "--model", weights["tiny"]], capsys)
    assert code == 1 and (tmp_path / "kept").is_dir() and not (tmp_path / "kept" / "thumbs").exists()


def test_quiet(tmp_path, weights, photos, capsys):
    code, out, err = run(["encode", photos["odd"], "-o", tmp_path, "--model", weights["tiny"], "-q"], capsys)
    assert code == 0 and out == "" and err == ""


# -- roundtrip, demo, models --------------------------------------------------------------


def test_roundtrip_writes_comparison(tmp_path, weights, photos, capsys):
    code, out, err = run(
        ["roundtrip", photos["big"], "-o", tmp_path, "--model", weights["box"], "--quality", "50"], capsys
    )
    assert code == 0, err
    assert files(tmp_path) == ["big.bicubic.png", "big.compare.png", "big.jpg", "big.png"]
    assert "PSNR-Y" in out and "bicubic" in out and "box" in out and "big.compare.png" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith(("bicubic", "box"))}
    assert int(rows["bicubic"][2].replace(",", "")) <= int(rows["box"][2].replace(",", ""))  # same bytes or fewer
    assert 24 < float(rows["box"][4]) < 60 and 24 < float(rows["bicubic"][4]) < 60
    fig = Image.open(tmp_path / "big.compare.png")
    assert fig.width > 3 * 96 and fig.mode == "RGB"


def test_demo(tmp_path, weights, capsys):
    code, out, err = run(["demo", "--model", weights["box"], "--qualities", "30,70", "-o", tmp_path], capsys)
    assert code == 0, err
    table = [line.split() for line in out.splitlines() if line.strip()[:2] in ("30", "70")]
    assert [t[0] for t in table] == ["30", "70"]
    assert "comparison.png" in out and (tmp_path / "comparison.png").is_file()
    code, _, err = run(["demo", "--model", weights["box"], "--qualities", "30", "-o", tmp_path], capsys)
    assert code == 2 and "--force" in err
    (tmp_path / "a_file").write_bytes(b"keep")
    code, out, err = run(["demo", "--model", weights["box"], "--qualities", "30", "-o", tmp_path / "a_file"], capsys)
    assert code == 2 and "not a directory" in err and out == ""  # refused before the model runs
    assert (tmp_path / "a_file").read_bytes() == b"keep"


def test_models(capsys):
    code, out, _ = run(["models"], capsys)
    assert code == 0 and "sain-x2-jpeg" in out and "bundled" in out
    code, out, _ = run(["models", "--json"], capsys)
    rows = [json.loads(line) for line in out.splitlines()]
    assert {"sain-x2-jpeg", "sain-x4-jpeg"} <= {r["name"] for r in rows}
    assert {"scale", "codec", "size_mb", "eval", "bundled"} <= set(rows[0])


def test_models_table_shows_every_test_set_and_unbundled_models_apart(capsys):
    """Issue 11 item 17: no test set is cut off the table; models without weights are listed apart."""
    code, out, _ = run(["models"], capsys)
    assert code == 0
    table, _, foot = out.partition("\n\n")
    rows = {line.split()[0]: line for line in table.splitlines()[1:]}
    for e in sain.zoo.list_models():
        assert (e.name in rows) == e.available, e.name
        if e.available:
            ev = sain.zoo.model_info(e).get("eval") or {}
            for test_set in {k.split()[0] for k in ev if "vs bicubic" in k}:
                assert f"{test_set} " in rows[e.name] + " ", (e.name, test_set)
        else:
            assert e.name in foot and "not bundled" in foot
    assert "Set5" in rows["sain-x2-jpeg"]


def test_no_user_text_cites_a_document_users_do_not_have(capsys):
    """Issue 11 item 17: help texts, the package (its messages and reports) and the user
    documents never cite SAIN_SPEC."""
    from sain.cli import COMMANDS

    for command in COMMANDS:
        code, out, _ = run([command, "--help"], capsys)
        assert code == 0 and "SAIN_SPEC" not in out, command
    root = Path(__file__).parent.parent
    package = root / "src" / "sain"
    texts = [*package.rglob("*.py"), *package.rglob("*.toml"), *package.rglob("*.html"), *package.rglob("*.js")]
    for path in [*texts, root / "README.md", root / "MODELS.md", root / "CHANGELOG.md"]:
        assert "SAIN_SPEC" not in path.read_text(encoding="utf-8"), path


# -- Python API ---------------------------------------------------------------------------


def test_api_in_memory_roundtrip(weights):
    hr = read_image(api.SAMPLE_IMAGE)[:, 100:141, 200:253]  # 53 x 41
    data, info = api.encode_image(hr, weights["box"], "jpeg", 90)
    assert info == api.ThumbnailInfo(file_id(weights["box"]), 2, 53, 41)
    assert api.read_info(data) == info
    assert Image.open(io.BytesIO(data)).size == (27, 21)
    out = api.decode_image(data, weights["box"])
    assert out.shape == (3, 41, 53)
    assert psnr(out, hr, crop_border=2) > 25
    # tiled decoding gives the same 8-bit image
    tiled = api.decode_image(data, weights["box"], tile=8)
    assert (tiled - out).abs().max().item() <= 1 / 255 + 1e-6


def test_auto_tiling_of_large_images(weights, monkeypatch):
    """Above AUTO_TILE_PIXELS the tiled path runs, with the untiled result (8 bits, +-1 level)."""
    m = api.get_model(weights["tiny"])
    hr = read_image(api.SAMPLE_IMAGE)[:, :96, :128][None]
    lr_plain = ModelMethod(m, "off").downscale(hr)
    hr_plain = ModelMethod(m, "off").upscale(lr_plain, 3)
    calls = []
    monkeypatch.setattr(sain.pipeline, "AUTO_TILE_PIXELS", 16 * 16)  # the tiling policy of the API
    monkeypatch.setattr(sain.pipeline, "DEFAULT_TILE", 16)
    for name in ("tiled_downscale", "tiled_upscale"):
        fn = getattr(sain.pipeline, name)
        monkeypatch.setattr(sain.pipeline, name, lambda *a, _fn=fn, **k: calls.append(k["tile"]) or _fn(*a, **k))
    lr_tiled = ModelMethod(m, "auto").downscale(hr)
    hr_tiled = ModelMethod(m, "auto").upscale(lr_tiled, 3)
    assert calls == [32, 16]  # HR and LR pixels
    assert (lr_tiled - lr_plain).abs().max().item() <= 1 / 255 + 1e-6
    assert (hr_tiled - hr_plain).abs().max().item() <= 1 / 255 + 1e-6


def test_match_quality_is_largest_not_above():
    rng = np.random.default_rng(0)
    lr = (rng.random((24, 32, 3)) * 255).astype(np.uint8)
    target = len(api.encode(lr, "jpeg", 60)) + 5
    q, data = api.match_quality(lr, "jpeg", target)
    assert len(data) <= target
    assert q == 100 or len(api.encode(lr, "jpeg", q + 1)) > target
    assert api.match_quality(lr, "jpeg", 10)[0] == 1  # nothing fits: quality 1
