"""Tests of sain.evaluate and ``sain eval``: the paper's evaluation protocol and its report."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import sain.codecs.real
import sain.evaluate as ev
from sain import SAIN, save_weights
from sain.cli import main
from sain.codecs import codec_roundtrip
from sain.evaluate import evaluate, modcrop, parse_qualities, write_report
from sain.imaging import imresize, read_image
from sain.metrics import psnr, ssim
from sain.pipeline import roundtrip

torch.set_num_threads(1)

DATASETS = Path(__file__).parents[1] / ".." / "shared" / "datasets"

# The paper's bicubic x2 JPEG Y-PSNR (read off its figure), QF 30 / 50 / 70 / 80 / 90.
PAPER_BICUBIC = {
    "Set5": (29.75, 30.75, 31.62, 32.21, 32.98),
    "Set14": (27.57, 28.31, 29.00, 29.43, 29.94),
}


def _smooth_image(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth, textured RGB uint8 image (sines plus a little noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = []
    for _ in range(3):
        fy, fx, ph = rng.uniform(0.05, 0.4), rng.uniform(0.05, 0.4), rng.uniform(0, 6.3)
        chans.append(0.5 + 0.35 * np.sin(fy * yy + ph) * np.cos(fx * xx - ph) + 0.03 * rng.standard_normal((h, w)))
    return (np.clip(np.stack(chans, -1), 0, 1) * 255).round().astype(np.uint8)


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    """A dataset folder 'Toy' with a 48x48 and a 36x60 image."""
    d = tmp_path / "Toy"
    d.mkdir()
    Image.fromarray(_smooth_image(48, 48, 0)).save(d / "a.png")
    Image.fromarray(_smooth_image(36, 60, 1)).save(d / "b.png")
    return d


def _tiny_sain(scale: int = 2, seed: int = 0) -> SAIN:
    """A 1+1-block SAIN with perturbed weights (non-identity couplings, non-trivial GMM)."""
    torch.manual_seed(seed)
    model = SAIN(scale, e_blocks=1, v_blocks=1).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return model


@pytest.fixture()
def tiny_weights(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.safetensors"
    save_weights(_tiny_sain(), path)
    return path


def _u8(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x.clamp(0, 1) * 255) / 255


# ----------------------------------------------------------------------------- library


def test_parse_qualities() -> None:
    assert parse_qualities("90, 30,50,30") == [30, 50, 90]
    assert parse_qualities([70, 80]) == [70, 80]
    for bad, msg in (
        ("30,abc", "not an integer"),
        ("0,50", "out of range"),
        ("101", "out of range"),
        ("", "not an integer"),
        ([], "empty"),
    ):
        with pytest.raises(ValueError, match=msg):
            parse_qualities(bad)


def test_modcrop() -> None:
    x = torch.rand(3, 50, 38)
    assert modcrop(x, 12).shape == (3, 48, 36)
    assert torch.equal(modcrop(x, 12), x[:, :48, :36])
    assert modcrop(x, 2).shape == (3, 50, 38)


def test_png_is_one_lossless_column(data_dir: Path, tiny_weights: Path, tmp_path: Path) -> None:
    """PNG ignores the quality: one record per method at quality 100 (what a quality-aware
    model is told), scored on the 8-bit LR as it was sent, and one 'lossless' column in
    results.md instead of five identical QF columns."""
    res = evaluate([str(tiny_weights), "bicubic"], [data_dir], "png", [30, 50, 90], progress=False)
    assert [(r["model"], r["quality"]) for r in res.records] == [("tiny", 100), ("bicubic", 100)]
    assert not res.same_bytes
    bic = next(r for r in res.records if r["model"] == "bicubic")
    hr = read_image(data_dir / "a.png")
    restored = _u8(imresize(_u8(imresize(hr, 0.5)), 2.0))  # lossless: the LR arrives unchanged
    row = next(r for r in res.per_image if r["model"] == "bicubic" and r["image"] == "a.png")
    assert row["psnr_y"] == pytest.approx(psnr(restored, hr, 2, y_channel=True), abs=1e-6)
    assert bic["images"] == 2
    write_report(res.records, res.per_image, tmp_path / "rep")
    md = (tmp_path / "rep" / "results.md").read_text()
    assert "| Method | lossless |" in md and "QF30" not in md


def test_bicubic_matches_manual_recomputation(data_dir: Path) -> None:
    res = evaluate(["bicubic"], [data_dir], "jpeg", [30, 70], progress=False)
    assert [r["quality"] for r in res.records] == [30, 70]
    assert {(r["image"], r["quality"]) for r in res.per_image} == {
        ("a.png", 30),
        ("a.png", 70),
        ("b.png", 30),
        ("b.png", 70),
    }
    for rec in res.records:
        q = rec["quality"]
        manual = {
            "psnr_y": [],
            "ssim_y": [],
            "psnr_rgb": [],
            "ssim_rgb": [],
            "received_psnr_y": [],
            "bytes": [],
            "bpp": [],
        }
        for name in ("a.png", "b.png"):
            hr = read_image(data_dir / name)
            lr = _u8(imresize(hr, 0.5))
            received, sizes = codec_roundtrip(lr, "jpeg", q)
            restored = _u8(imresize(received, 2.0))
            manual["psnr_y"].append(psnr(restored, hr, 2, y_channel=True))
            manual["ssim_y"].append(ssim(restored, hr, 2, y_channel=True))
            manual["psnr_rgb"].append(psnr(restored, hr, 2))
            manual["ssim_rgb"].append(ssim(restored, hr, 2))
            manual["received_psnr_y"].append(psnr(received, lr, 0, y_channel=True))
            manual["bytes"].append(sizes[0])
            manual["bpp"].append(8 * sizes[0] / (hr.shape[1] * hr.shape[2]))
        for k, v in manual.items():
            assert rec[k] == pytest.approx(float(np.mean(v)), abs=1e-9), k
        assert rec["images"] == 2 and rec["scale"] == 2 and rec["modcrop"] == 2
        assert math.isinf(rec["lr_psnr_y"]) and rec["lr_ssim_y"] == 1.0  # bicubic sends the bicubic LR


def test_model_rows_equal_pipeline_roundtrip(data_dir: Path) -> None:
    model = _tiny_sain()
    model.name = "tiny"
    res = evaluate([model], [data_dir], "webp", [50], seed=3, progress=False)
    for row in res.per_image:
        hr = read_image(data_dir / row["image"])
        rt = roundtrip(model, hr.unsqueeze(0), "webp", 50, seed=3)
        assert row["model"] == "tiny" and row["kind"] == "model"
        assert row["psnr_y"] == psnr(rt.restored[0], hr, 2, y_channel=True)
        assert row["ssim_rgb"] == ssim(rt.restored[0], hr, 2)
        assert row["bytes"] == rt.sizes[0]
        bic = _u8(imresize(hr, 0.5))
        assert row["lr_psnr_rgb"] == psnr(rt.lr[0], bic)
        assert math.isfinite(row["lr_psnr_y"])


def test_determinism_with_seed(data_dir: Path) -> None:
    def run(seed: int) -> list[dict]:
        return evaluate([_tiny_sain()], [data_dir], "jpeg", [50, 90], seed=seed, progress=False).per_image

    first, again, other = run(0), run(0), run(1)
    assert first == again
    assert any(a["psnr_rgb"] != b["psnr_rgb"] for a, b in zip(first, other, strict=True))


def test_jpeg_hr_rows(data_dir: Path) -> None:
    res = evaluate(["bicubic", "jpeg-hr"], [data_dir], "jpeg", [30, 90], progress=False)
    hr_recs = [r for r in res.records if r["model"] == "jpeg-hr"]
    assert [r["quality"] for r in hr_recs] == list(ev.DEFAULT_HR_QUALITIES[2])
    assert all(r["kind"] == "jpeg-hr" and r["lr_psnr_y"] is None for r in hr_recs)
    bpps = [r["bpp"] for r in hr_recs]
    assert bpps == sorted(bpps) and len(set(bpps)) > 3
    # metrics are those of the decoded HR file against the HR image
    row = next(r for r in res.per_image if r["model"] == "jpeg-hr" and r["quality"] == 10 and r["image"] == "a.png")
    hr = read_image(data_dir / "a.png")
    dec, sizes = codec_roundtrip(hr, "jpeg", 10)
    assert row["psnr_y"] == psnr(dec, hr, 2, y_channel=True) and row["bytes"] == sizes[0]
    custom = evaluate(["jpeg-hr"], [data_dir], "jpeg", [50], hr_qualities="20,60", progress=False)
    assert [r["quality"] for r in custom.records] == [20, 60]


def test_modcrop_option(tmp_path: Path) -> None:
    d = tmp_path / "Odd"
    d.mkdir()
    Image.fromarray(_smooth_image(50, 38, 2)).save(d / "odd.png")
    Image.fromarray(_smooth_image(37, 41, 3)[..., 0]).save(d / "gray.png")  # grayscale -> RGB
    default = evaluate(["bicubic"], [d], "jpeg", [50], progress=False).per_image
    assert {r["image"]: (r["height"], r["width"]) for r in default} == {"odd.png": (50, 38), "gray.png": (36, 40)}
    by12 = evaluate(["bicubic"], [d], "jpeg", [50], modcrop=12, progress=False).per_image
    assert {r["image"]: (r["height"], r["width"]) for r in by12} == {"odd.png": (48, 36), "gray.png": (36, 36)}
    assert all(r["modcrop"] == 12 for r in by12)
    with pytest.raises(ValueError, match="multiple of the scale"):
        evaluate(["bicubic"], [d], "jpeg", [50], modcrop=3, progress=False)


def test_scale_checks(data_dir: Path) -> None:
    with pytest.raises(ValueError, match="different scales"):
        evaluate([_tiny_sain(2), _tiny_sain(4)], [data_dir], progress=False)
    with pytest.raises(ValueError, match="x2 model but --scale 4"):
        evaluate([_tiny_sain(2)], [data_dir], scale=4, progress=False)
    with pytest.raises(ValueError, match="too small"):  # b.png: 36x60, its x4 LR 9x15 < SSIM window
        evaluate(["bicubic"], [data_dir], "jpeg", [50], scale=4, progress=False)
    (data_dir / "b.png").unlink()
    res = evaluate(["bicubic"], [data_dir], "jpeg", [50], scale=4, modcrop=12, progress=False)
    assert res.records[0]["scale"] == 4 and res.per_image[0]["height"] == 48


def test_report_files(data_dir: Path, tmp_path: Path) -> None:
    res = evaluate(["bicubic", _tiny_sain(), "jpeg-hr"], [data_dir], "jpeg", [30, 50, 90], progress=False)
    out = tmp_path / "rep"
    written = write_report(res.records, res.per_image, out)
    names = {p.name for p in written}
    assert {
        "results.json",
        "results.csv",
        "per_image.csv",
        "results.md",
        "psnr_vs_quality_Toy.png",
        "rd_Toy.png",
    } <= names
    assert all(p.is_file() and p.stat().st_size > 0 for p in written)
    records = json.loads((out / "results.json").read_text())  # strict JSON (inf -> null)
    assert isinstance(records, list) and len(records) == 3 + 3 + len(ev.DEFAULT_HR_QUALITIES[2])
    keys = {
        "dataset",
        "model",
        "format",
        "quality",
        "scale",
        "psnr_y",
        "ssim_y",
        "psnr_rgb",
        "ssim_rgb",
        "lr_psnr_y",
        "bpp",
        "images",
    }
    assert all(keys <= set(r) for r in records)
    assert records[0]["dataset"] == "Toy" and records[0]["lr_psnr_y"] is None  # bicubic: infinite
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(records) and float(rows[0]["psnr_y"]) == pytest.approx(records[0]["psnr_y"])
    with open(out / "per_image.csv") as f:
        assert len(list(csv.DictReader(f))) == len(res.per_image)
    md = (out / "results.md").read_text()
    assert "| Method | QF30 | QF50 | QF90 |" in md and "| bicubic |" in md and "| sain-x2 |" in md
    assert "jpeg-hr" in md and f"{records[0]['psnr_y']:.2f}/{records[0]['ssim_y']:.4f}" in md
    for f in ("psnr_vs_quality_Toy.png", "rd_Toy.png"):
        with Image.open(out / f) as im:
            assert im.format == "PNG" and im.width > 300
    with pytest.raises(FileExistsError):
        write_report(res.records, res.per_image, out)
    write_report(res.records, res.per_image, out, overwrite=True)


def test_report_without_matplotlib(data_dir: Path, tmp_path: Path, monkeypatch, caplog) -> None:
    import builtins

    real_import = builtins.__import__

    def no_mpl(name, *a, **k):
        if name.startswith("matplotlib"):
            raise ImportError("no matplotlib")
        return real_import(name, *a, **k)

    res = evaluate(["bicubic"], [data_dir], "jpeg", [50], progress=False)
    monkeypatch.setattr(builtins, "__import__", no_mpl)
    written = write_report(res.records, res.per_image, tmp_path / "r")
    assert not list((tmp_path / "r").glob("*.png")) and len(written) == 4
    assert "matplotlib" in caplog.text


def test_save_images(data_dir: Path, tmp_path: Path) -> None:
    evaluate(
        ["bicubic", "jpeg-hr"],
        [data_dir],
        "jpeg",
        [30],
        save_images_dir=tmp_path / "img",
        hr_qualities=[10],
        progress=False,
    )
    d = tmp_path / "img" / "Toy"
    for f in ("bicubic/a_lr.png", "bicubic/a_lr_q30.jpg", "bicubic/a_q30.png", "jpeg-hr/b_q10.jpg"):
        assert (d / f).is_file(), f
    # the saved compressed file is the one that was measured
    hr = read_image(data_dir / "a.png")
    _, sizes = codec_roundtrip(_u8(imresize(hr, 0.5)), "jpeg", 30)
    assert (d / "bicubic/a_lr_q30.jpg").stat().st_size == sizes[0]
    with Image.open(d / "bicubic/a_q30.png") as im:
        assert im.size == (48, 48)


# ----------------------------------------------------------------------------- command line


def test_cli_two_models(data_dir: Path, tiny_weights: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "report"
    rc = main(
        [
            "eval",
            "--model",
            "bicubic",
            "--model",
            str(tiny_weights),
            "--model",
            "jpeg-hr",
            "--data",
            str(data_dir),
            "--quality",
            "30,70",
            "--hr-quality",
            "5,20",
            "--seed",
            "1",
            "--out",
            str(out),
            "--save-images",
        ]
    )
    assert rc == 0
    records = json.loads((out / "results.json").read_text())
    assert [(r["model"], r["quality"]) for r in records] == [
        ("bicubic", 30),
        ("bicubic", 70),
        ("tiny", 30),
        ("tiny", 70),
        ("jpeg-hr", 5),
        ("jpeg-hr", 20),
    ]
    assert all(r["seed"] == 1 for r in records)
    for f in ("results.csv", "per_image.csv", "results.md", "psnr_vs_quality_Toy.png", "rd_Toy.png"):
        assert (out / f).is_file(), f
    assert (out / "images" / "Toy" / "tiny" / "b_q70.png").is_file()
    assert "report written to" in capsys.readouterr().out
    # an existing report is not overwritten without --force
    argv = [
        "eval",
        "--model",
        "bicubic",
        "--data",
        str(data_dir),
        "--quality",
        "50",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sain eval: error:") and "--force" in err and len(err.splitlines()) == 1
    assert main([*argv, "--force"]) == 0
    assert [r["model"] for r in json.loads((out / "results.json").read_text())] == ["bicubic"]


@pytest.mark.parametrize(
    "case", ["missing", "empty", "quality", "range", "format", "avif", "model", "scale", "modcrop"]
)
def test_cli_errors(case: str, data_dir: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    args = {"--model": "bicubic", "--data": str(data_dir), "--quality": "50", "--format": "jpeg"}
    extra: list[str] = []
    expect = {
        "missing": "not found",
        "empty": "no images",
        "quality": "'abc' is not an integer",
        "range": "out of range",
        "format": "unknown format",
        "avif": "not available",
        "model": "unknown model",
        "scale": "but --scale 4",
        "modcrop": "modcrop",
    }[case]
    if case == "missing":
        args["--data"] = str(tmp_path / "nope")
    elif case == "empty":
        args["--data"] = str(empty)
    elif case == "quality":
        args["--quality"] = "30,abc"
    elif case == "range":
        args["--quality"] = "30,101"
    elif case == "format":
        args["--format"] = "gif"
    elif case == "avif":
        monkeypatch.setattr(sain.codecs.real, "available_formats", lambda: ("jpeg", "webp", "png"))
        args["--format"] = "avif"
    elif case == "model":
        args["--model"] = "no-such-model"
    elif case == "scale":
        path = tmp_path / "m.safetensors"
        save_weights(_tiny_sain(), path)
        args["--model"] = str(path)
        extra = ["--scale", "4"]
    elif case == "modcrop":
        extra = ["--modcrop", "5"]
    argv = ["eval", *[x for kv in args.items() for x in kv], *extra, "--out", str(tmp_path / "r"), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("sain eval: error:") and expect in err, err
    assert not (tmp_path / "r" / "results.json").exists()


# ----------------------------------------------------------------------------- the paper's numbers


@pytest.mark.datasets
def test_bicubic_reproduces_paper_set5_set14() -> None:
    """Bicubic x2 JPEG, GTmod12: the paper's Set5/Set14 Y-PSNR within 0.02 dB (measured <= 0.01)."""
    folders = [DATASETS / "test" / name for name in PAPER_BICUBIC]
    if not all(f.is_dir() for f in folders):
        pytest.skip(f"benchmark folders not found under {DATASETS}")
    res = evaluate(["bicubic"], folders, "jpeg", [30, 50, 70, 80, 90], scale=2, modcrop=12, progress=False)
    got = {(r["dataset"], r["quality"]): r for r in res.records}
    assert got[("Set5", 30)]["images"] == 5 and got[("Set14", 30)]["images"] == 14
    for dataset, expected in PAPER_BICUBIC.items():
        for q, want in zip((30, 50, 70, 80, 90), expected, strict=True):
            measured = got[(dataset, q)]["psnr_y"]
            print(f"{dataset} QF{q}: {measured:.3f} dB (paper {want:.2f})")
            assert abs(measured - want) <= 0.02, (dataset, q, measured, want)
