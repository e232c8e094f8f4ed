"""Tests of sain.same_bytes and the same-bytes comparison of ``sain eval``: the bitrate
match (closest file, ties to the smaller), its rows, report files and command line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import sain.compare
from sain import save_weights
from sain.cli import main
from sain.codecs import codec_roundtrip, encode
from sain.evaluate import evaluate, modcrop, write_report
from sain.imaging import read_image
from sain.metrics import psnr
from sain.pipeline import BicubicMethod, ModelMethod
from sain.reports import METRICS, SAME_BYTES_COLUMNS, markdown_report
from sain.same_bytes import BicubicAtBytes, match_quality, reach_note
from test_evaluate import _smooth_image, _tiny_sain

torch.set_num_threads(1)


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    """A dataset 'Toy' of two small images (48x48 and 36x60)."""
    for seed, (name, size) in enumerate({"a.png": (48, 48), "b.png": (36, 60)}.items()):
        (tmp_path / "Toy").mkdir(exist_ok=True)
        Image.fromarray(_smooth_image(*size, seed)).save(tmp_path / "Toy" / name)
    return tmp_path / "Toy"


def _closest(sizes: dict[int, int], target: int) -> int:
    """The exhaustive rule: the size closest to the target, ties to the smaller file."""
    return min(sizes.values(), key=lambda s: (abs(s - target), s))


# ----------------------------------------------------------------------------- the match


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_closest_match_is_the_closest_size_of_all_qualities(fmt: str) -> None:
    lr = _smooth_image(40, 56, 3)
    sizes = {q: len(encode(lr, fmt, q)) for q in range(1, 101)}
    targets = [sizes[1] - 50, sizes[100] + 50, *np.linspace(sizes[1], sizes[100], 23).round().astype(int)]
    targets += [(sizes[40] + sizes[41]) // 2, sizes[60], sizes[60] + 1]
    files = {q: encode(lr, fmt, q) for q in range(1, 101)}
    q, data = match_quality(lr, fmt, sizes[60] + 1, "closest")  # the default encoder
    assert data == files[q] and len(data) == _closest(sizes, sizes[60] + 1)
    for target in targets:
        q, data = match_quality(lr, fmt, int(target), "closest", files.__getitem__)
        assert len(data) == sizes[q]
        assert len(data) == _closest(sizes, int(target)), (fmt, target, q)
    # a tie goes to the smaller file
    lo, hi = sizes[50], min(s for s in sizes.values() if s > sizes[50])
    assert len(match_quality(lr, fmt, lo + (hi - lo) // 2, "closest", files.__getitem__)[1]) == lo
    if (hi - lo) % 2:
        assert len(match_quality(lr, fmt, lo + (hi - lo) // 2 + 1, "closest", files.__getitem__)[1]) == hi


def test_not_above_rule_is_roundtrips_and_unchanged() -> None:
    assert sain.compare.match_quality is match_quality
    lr = _smooth_image(24, 32, 5)
    target = len(encode(lr, "jpeg", 60)) + 5
    q, data = match_quality(lr, "jpeg", target)
    assert len(data) <= target and (q == 100 or len(encode(lr, "jpeg", q + 1)) > target)
    with pytest.raises(ValueError, match="unknown match rule"):
        match_quality(lr, "jpeg", target, "nearest")


def test_reach_notes_at_the_ends() -> None:
    lr = _smooth_image(24, 32, 6)
    sizes = [len(encode(lr, "jpeg", q)) for q in range(1, 101)]
    q, data = match_quality(lr, "jpeg", 10, "closest")
    assert q == 1 and reach_note(len(data), 10, sizes) == "all-larger"
    q, data = match_quality(lr, "jpeg", 10**7, "closest")
    assert q == 100 and reach_note(len(data), 10**7, sizes) == "all-smaller"
    mid = sorted(sizes)[50]
    assert reach_note(max(sizes), max(sizes), sizes) == reach_note(mid, mid + 3, sizes) == ""


def test_bicubic_at_bytes_scores_as_the_evaluation_does() -> None:
    hr = torch.from_numpy(_smooth_image(48, 40, 7)).permute(2, 0, 1).float() / 255
    ref = BicubicAtBytes(hr, 2, "jpeg")
    lr = BicubicMethod(2).downscale(hr[None])
    received, sizes = codec_roundtrip(lr, "jpeg", 55)
    want = psnr(BicubicMethod(2).upscale(received)[0], hr, 2, y_channel=True)
    row = ref.row(sizes[0], 30.0, 0.9)
    assert row["bicubic_quality"] == 55 or row["bicubic_bytes"] == sizes[0]
    assert len(ref.file(55)) == sizes[0] and ref.scores(55)[0] == pytest.approx(want, abs=1e-9)
    assert row["gain_db"] == pytest.approx(30.0 - row["bicubic_psnr_y"])
    assert set(SAME_BYTES_COLUMNS) | {"reach"} == set(row)


# ----------------------------------------------------------------------------- evaluate


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_evaluate_matches_each_network_row(data_dir: Path, fmt: str) -> None:
    res = evaluate([_tiny_sain(), "bicubic"], [data_dir], fmt, [30, 70], progress=False)
    net = {(r["image"], r["quality"]): r for r in res.per_image if r["model"] == "sain-x2"}
    assert {r["model"] for r in res.same_bytes_per_image} == {"sain-x2"}  # bicubic gets none
    assert len(res.same_bytes_per_image) == len(net) == 4
    for row in res.same_bytes_per_image:
        mine = net[(row["image"], row["quality"])]
        assert (row["bytes"], row["psnr_y"], row["ssim_y"]) == (mine["bytes"], mine["psnr_y"], mine["ssim_y"])
        hr = modcrop(read_image(data_dir / row["image"]), 2)
        ref = BicubicAtBytes(hr, 2, fmt)
        sizes = {q: len(ref.file(q)) for q in range(1, 101)}
        assert row["bicubic_bytes"] == sizes[row["bicubic_quality"]] == _closest(sizes, row["bytes"])
        assert row["bicubic_bpp"] == pytest.approx(8 * row["bicubic_bytes"] / (hr.shape[1] * hr.shape[2]))
    assert [(r["model"], r["quality"], r["images"]) for r in res.same_bytes] == [("sain-x2", 30, 2), ("sain-x2", 70, 2)]
    for rec in res.same_bytes:
        rows = [r for r in res.same_bytes_per_image if r["quality"] == rec["quality"]]
        for k in SAME_BYTES_COLUMNS:
            assert rec[k] == pytest.approx(np.mean([r[k] for r in rows])), k
        assert rec["unmatched_high"] + rec["unmatched_low"] == sum(r["reach"] != "" for r in rows)


def test_recompress_matches_the_bytes_the_receiver_gets(data_dir: Path) -> None:
    model = _tiny_sain()
    res = evaluate([model], [data_dir], "jpeg", [90], progress=False, recompress=40)
    for row in res.same_bytes_per_image:
        hr = modcrop(read_image(data_dir / row["image"]), 2)
        sent = ModelMethod(model).downscale(hr[None])
        got = codec_roundtrip(codec_roundtrip(sent, "jpeg", 90)[0], "jpeg", 40)[1][0]
        assert row["bytes"] == got and row["recompress"] == 40
        ref = BicubicAtBytes(hr, 2, "jpeg", recompress=40)
        sizes = {q: len(ref.file(q)) for q in range(1, 101)}
        assert row["bicubic_bytes"] == _closest(sizes, got)
    assert res.same_bytes[0]["recompress"] == 40


def test_no_same_bytes_without_a_network_with_png_or_when_asked(data_dir: Path) -> None:
    for models, fmt, flag in (
        (["bicubic", "jpeg-hr"], "jpeg", True),
        ([_tiny_sain()], "png", True),
        ([_tiny_sain()], "jpeg", False),
    ):
        res = evaluate(models, [data_dir], fmt, [50], progress=False, hr_qualities=[10], same_bytes=flag)
        assert res.records and not res.same_bytes and not res.same_bytes_per_image


# ----------------------------------------------------------------------------- report


def test_report_carries_the_same_bytes_fields(data_dir: Path, tmp_path: Path) -> None:
    res = evaluate([_tiny_sain(), "bicubic"], [data_dir], "jpeg", [30, 70], progress=False)
    out = tmp_path / "rep"
    written = write_report(res.records, res.per_image, out, False, res.same_bytes, res.same_bytes_per_image)
    assert {"same_bytes.csv", "same_bytes_per_image.csv"} <= {p.name for p in written}
    records = json.loads((out / "results.json").read_text())
    for r in records:
        if r["model"] == "bicubic":
            assert "same_bytes" not in r
            continue
        sb = r["same_bytes"]
        assert sb["match"] == "closest" and {*SAME_BYTES_COLUMNS, "unmatched_high", "unmatched_low"} <= set(sb)
        assert sb["psnr_y"] == pytest.approx(r["psnr_y"]) and sb["bytes"] == pytest.approx(r["bytes"])
    with open(out / "same_bytes.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["model"], r["quality"]) for r in rows] == [("sain-x2", "30"), ("sain-x2", "70")]
    assert float(rows[0]["gain_db"]) == pytest.approx(res.same_bytes[0]["gain_db"])
    with open(out / "same_bytes_per_image.csv") as f:
        assert len(list(csv.DictReader(f))) == 4
    md = (out / "results.md").read_text()
    assert "at the same codec quality (the paper's protocol)" in md and "at the same bytes" in md
    r = res.same_bytes[0]
    assert f"| sain-x2 | 30 | {r['bpp']:.3f} ({r['bytes']:.0f} B) | {r['psnr_y']:.2f} | " in md
    assert f"| {r['bicubic_psnr_y']:.2f} | {r['gain_db']:+.2f} |" in md and "| sain-x2 | mean |" in md
    # a report without a network drops the same-bytes files of an earlier one
    res2 = evaluate(["bicubic"], [data_dir], "jpeg", [30], progress=False)
    write_report(res2.records, res2.per_image, out, overwrite=True)
    assert not (out / "same_bytes.csv").exists() and "same bytes" not in (out / "results.md").read_text()
    assert "at the same codec quality (the paper's protocol)" in (out / "results.md").read_text()


def test_markdown_says_when_bicubic_cannot_reach_the_size() -> None:
    rec = {"dataset": "Toy", "model": "m", "kind": "model", "format": "jpeg", "quality": 90, "scale": 2}
    rec.update(modcrop=2, seed=0, images=3, recompress=40)
    rec.update({k: 1.0 for k in SAME_BYTES_COLUMNS}, unmatched_high=2, unmatched_low=0)
    md = markdown_report([dict(rec, **{k: 1.0 for k in METRICS})], [rec])
    assert "m QF90: on 2 of 3 images every bicubic file is smaller, quality 100 too" in md
    assert "the receiver gets, after the re-encode at QF40" in md


# ----------------------------------------------------------------------------- command line


def test_cli_eval_same_bytes_and_no_same_bytes(data_dir: Path, tmp_path: Path, capsys) -> None:
    weights = save_weights(_tiny_sain(), tmp_path / "tiny.safetensors")
    out = tmp_path / "r"
    argv = ["eval", "--model", str(weights), "--model", "bicubic", "--data", str(data_dir), "--quality", "40,80"]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("same bytes") == 2 and "vs bicubic" in printed
    with open(out / "same_bytes.csv") as f:
        assert [(r["model"], r["quality"]) for r in csv.DictReader(f)] == [("tiny", "40"), ("tiny", "80")]
    tiny = [r for r in json.loads((out / "results.json").read_text()) if r["model"] == "tiny"]
    assert [r["same_bytes"]["images"] for r in tiny] == [2, 2]
    assert main([*argv, "--out", str(out), "--no-progress", "--force", "--no-same-bytes"]) == 0
    assert "same bytes" not in capsys.readouterr().out
    assert not (out / "same_bytes.csv").exists()
    assert all("same_bytes" not in r for r in json.loads((out / "results.json").read_text()))
