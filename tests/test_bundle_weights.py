"""scripts/bundle_weights.py: the measured quality and the carried training history."""

from __future__ import annotations

import json

import pytest

import sain
import sain.zoo
from _scripts import load_script
from sain.checkpoint import load_state_dict_file

bundle = load_script("bundle_weights")


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    """The zoo's weight folder moved into tmp_path, so nothing shipped is touched."""
    d = tmp_path / "weights"
    d.mkdir()
    monkeypatch.setattr(sain.zoo, "WEIGHTS_DIR", d)
    return d


def _trained(path, **meta):
    return sain.save_weights(sain.SAIN(4, e_blocks=1, v_blocks=1).eval(), path, **meta)


def _report(path):
    rows = [
        {"model": m, "dataset": "B100", "format": "jpeg", "quality": q, "psnr_y": v + (1.0 if m == "x" else 0.0)}
        for m in ("x", "bicubic")
        for q, v in ((30, 24.5), (90, 26.0))
    ]
    path.write_text(json.dumps(rows))
    return path


def test_bundles_with_eval_and_appends_legs_to_the_bundled_history(tmp_path, weights_dir):
    entry = sain.zoo.ZOO["sain-x4-jpeg"]
    _trained(entry.path, training_history="0-100: first leg", hardware="steps 0-100: a GPU")
    new = _trained(tmp_path / "x.safetensors", training_command="sain train ...", hardware="x86_64 x2 threads")
    rc = bundle.main(
        [str(new), "sain-x4-jpeg", "--report", str(_report(tmp_path / "r.json")),
         "--leg", "100-200: second leg", "--leg-hardware", "steps 100-200: a CPU"]
    )  # fmt: skip
    assert rc == 0
    _, meta = load_state_dict_file(entry.path)
    assert meta["training_history"] == "0-100: first leg; 100-200: second leg"
    assert meta["hardware"] == "steps 0-100: a GPU; steps 100-200: a CPU"
    assert meta["training_command"] == "sain train ..."
    assert meta["zoo_name"] == "sain-x4-jpeg"
    assert json.loads(meta["eval"]) == {"B100 jpeg PSNR-Y vs bicubic, dB": 1.0}
    assert json.loads(meta["eval_table"]) == {"B100 jpeg": {"30": 25.5, "90": 27.0}}


def test_without_legs_the_file_keeps_its_own_metadata(tmp_path, weights_dir):
    entry = sain.zoo.ZOO["sain-x4-jpeg"]
    _trained(entry.path, training_history="old")
    new = _trained(tmp_path / "x.safetensors", hardware="x86_64 x2 threads")
    assert bundle.main([str(new), "sain-x4-jpeg"]) == 0
    _, meta = load_state_dict_file(entry.path)
    assert meta["hardware"] == "x86_64 x2 threads"
    assert "training_history" not in meta


def test_a_leg_starts_the_history_when_nothing_is_bundled(tmp_path, weights_dir):
    new = _trained(tmp_path / "x.safetensors")
    assert bundle.main([str(new), "sain-x4-jpeg", "--leg", "0-50: from scratch"]) == 0
    _, meta = load_state_dict_file(sain.zoo.ZOO["sain-x4-jpeg"].path)
    assert meta["training_history"] == "0-50: from scratch"


def test_refuses_weights_of_another_scale(tmp_path, weights_dir, capsys):
    x2 = sain.save_weights(sain.SAIN(2, e_blocks=1, v_blocks=1).eval(), tmp_path / "x2.safetensors")
    assert bundle.main([str(x2), "sain-x4-jpeg"]) == 2
    assert "is sain x2, but sain-x4-jpeg is sain x4" in capsys.readouterr().err
    assert not sain.zoo.ZOO["sain-x4-jpeg"].path.exists()
