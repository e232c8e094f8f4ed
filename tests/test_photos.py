"""Photos as people have them (issue 11): inputs never harmed, untrusted thumbnails,
huge, float, grayscale, transparent, animated and colour-managed files.

Every input is generated here; every failure must be one line, with no traceback and no
output or temporary file left behind.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import sain
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
