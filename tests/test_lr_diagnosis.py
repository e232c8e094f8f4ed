"""scripts/lr_diagnosis.py on a tiny model: one row per image and model, with values that
agree with an independent computation of the clipped fraction and the LR's PSNR."""

from __future__ import annotations

import csv
from pathlib import Path

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
