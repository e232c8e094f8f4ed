"""Packaged training configs found by name (``sain.train.presets``, ``sain train NAME``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sain.cli import main
from sain.train import load_config
from sain.train.presets import CONFIG_DIR, list_configs, resolve_config

SHIPPED = [
    "irn_x2",
    "irn_x2_cpu",
    "irn_x4",
    "sain_x2_jpeg",
    "sain_x2_jpeg_cpu",
    "sain_x2_webp",
    "sain_x2_webp_cpu",
    "sain_x4_jpeg",
    "sain_x4_jpeg_cpu",
]


def test_configs_live_inside_the_package():
    assert CONFIG_DIR.parts[-2:] == ("sain", "configs")
    assert set(SHIPPED) <= set(list_configs())
    assert list_configs() == sorted(list_configs())


def test_root_configs_link_is_the_packaged_folder():
    """In a clone, the documented ``configs/xxx.toml`` paths reach the same files."""
    root = Path(__file__).resolve().parents[1] / "configs"
    if not root.exists():
        pytest.skip("not a clone of the repository")
    assert root.resolve() == CONFIG_DIR.resolve()


@pytest.mark.parametrize("given", ["sain_x2_jpeg_cpu", "sain_x2_jpeg_cpu.toml", "configs/sain_x2_jpeg_cpu.toml"])
def test_resolution_by_name(given, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing of that name here: the packaged config is found
    path = resolve_config(given)
    assert path == CONFIG_DIR / "sain_x2_jpeg_cpu.toml"
    assert load_config(path).model.arch == "sain"


def test_an_existing_path_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("sain_x2_jpeg_cpu.toml").write_text('[model]\narch = "irn"\n')
    assert resolve_config("sain_x2_jpeg_cpu.toml") == Path("sain_x2_jpeg_cpu.toml")
    assert resolve_config("sain_x2_jpeg_cpu") == Path("sain_x2_jpeg_cpu.toml")  # as load_config does
    other = tmp_path / "sub" / "mine.toml"
    other.parent.mkdir()
    other.write_text("")
    assert resolve_config(other) == other
    assert resolve_config(tmp_path / "sub" / "mine") == other


@pytest.mark.parametrize("given", ["nope", "nope.toml", "configs/nope.toml", "/does/not/exist/sain_x2_jpeg.toml"])
def test_unknown_config_is_a_one_line_error_naming_the_known_ones(given):
    with pytest.raises(ValueError) as info:
        resolve_config(given)
    msg = str(info.value)
    assert "\n" not in msg and "config file not found" in msg and given in msg
    assert all(name in msg for name in SHIPPED)


def test_sain_train_unknown_name_exits_2_with_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "nope", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("sain train: error: config file not found: nope")
    assert "sain_x2_jpeg_cpu" in lines[0]
    assert not (tmp_path / "run").exists()


def test_sain_train_finds_a_packaged_config_by_name(capsys, tmp_path, monkeypatch):
    """``sain train sain_x2_jpeg_cpu`` from a folder without configs reads the packaged recipe;
    its relative ``data.train`` stays relative to the current directory (absent here)."""
    monkeypatch.chdir(tmp_path)
    assert main(["train", "sain_x2_jpeg_cpu", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "config file not found" not in err
    assert "data folder not found: ../shared/datasets/train" in err, err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_help_lists_the_packaged_configs(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in SHIPPED)
