"""scripts/lr_diagnosis.py on a tiny model: one row per image and model, with values that
agree with an independent computation of the clipped fraction and the LR's PSNR."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from _scripts import load_script
from _tiny_train import noise_images
from sain import save_weights
from sain.imaging import read_image
from sain.metrics import psnr
from sain.models import SAIN
from sain.pipeline import BicubicMethod


def test_rows_and_values(tmp_path: Path, capsys):
    mod = load_script("lr_diagnosis")
    torch.manual_seed(0)
    model = SAIN(scale=2, e_blocks=1, v_blocks=1).eval()
    weights = save_weights(model, tmp_path / "w" / "tiny.safetensors")
    data = noise_images(tmp_path / "imgs", 2, 48, 0)
    out = tmp_path / "rows.csv"
    assert mod.main(["--model", str(weights), "--data", str(data), "--modcrop", "4", "--csv", str(out)]) == 0
    text = capsys.readouterr().out
    assert "w/tiny" in text and text.count("mean") == 1
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 2 and {r["model"] for r in rows} == {"w/tiny"}
    first = sorted(data.iterdir())[0]
    hr = read_image(first)
    hr = hr[:, : hr.shape[1] // 4 * 4, : hr.shape[2] // 4 * 4]
    with torch.no_grad():
        lr = model.downscale(hr.unsqueeze(0))
    row = next(r for r in rows if r["image"] == first.stem)
    clip = 100 * ((lr < -0.5 / 255) | (lr > 1 + 0.5 / 255)).float().mean().item()
    assert abs(float(row["clip%"]) - clip) < 1e-6
    ref = BicubicMethod(2).downscale(hr.unsqueeze(0))[0]
    lr_y = psnr((lr[0].clamp(0, 1) * 255).round() / 255, ref, 0, y_channel=True)
    assert abs(float(row["lr_y"]) - lr_y) < 1e-6
    for c in ("d_vs_r", "via_d", "via_r", "via_png"):
        assert 5 < float(row[c]) < 100


def test_quick_eval_agrees_with_sain_eval(tmp_path: Path, capsys):
    """scripts/quick_eval.py's screen is the protocol of sain.evaluate on the same images."""
    from sain.evaluate import evaluate

    mod = load_script("quick_eval")
    torch.manual_seed(1)
    weights = save_weights(SAIN(scale=2, e_blocks=1, v_blocks=1).eval(), tmp_path / "w" / "tiny.safetensors")
    root = tmp_path / "test"
    noise_images(root / "Set14", 2, 48, 1)
    noise_images(root / "B100", 3, 40, 2)
    assert mod.main([str(weights), "--testsets", str(root), "--b100", "2", "--quality", "50,90"]) == 0
    line = capsys.readouterr().out.strip()
    got = {part.split()[0]: [float(v) for v in part.split()[1:3]] for part in line.split(" | ")[1:]}
    b100_two = tmp_path / "b2"
    b100_two.mkdir()
    for f in sorted((root / "B100").iterdir())[:2]:
        (b100_two / f.name).write_bytes(f.read_bytes())
    for name, folder, crop in (("Set14", root / "Set14", 12), ("B100", b100_two, 2)):
        res = evaluate([weights], [folder], qualities=[50, 90], modcrop=crop, progress=False, same_bytes=False)
        ref = [r["psnr_y"] for r in res.records if r["model"] != "bicubic"]
        assert got[name] == pytest.approx(ref, abs=2e-3), (name, got[name], ref)
