"""Weight averaging (`sain average`, sain.averaging): the mean is checked against the tensors
averaged by hand, the provenance it records, and the refusals (nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sain import save_weights
from sain.averaging import average_models, average_weights, parse_coefficients
from sain.checkpoint import read_metadata
from sain.cli import main
from sain.models import SAIN
from sain.zoo import file_sha256


def _tiny(seed: int, e_blocks: int = 1, scale: int = 2) -> SAIN:
    torch.manual_seed(seed)
    m = SAIN(scale=scale, e_blocks=e_blocks, v_blocks=1)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return m.eval()


def _files(tmp_path: Path) -> tuple[Path, Path]:
    a = save_weights(_tiny(0), tmp_path / "a.safetensors", iterations=100, training_command="sain train A")
    b = save_weights(_tiny(1), tmp_path / "b.safetensors", iterations=300, training_command="sain train B")
    return a, b


def test_the_average_is_the_weighted_mean_of_the_tensors(tmp_path: Path):
    a, b = _files(tmp_path)
    out = average_weights([a, b], tmp_path / "soup.safetensors", "1,3")
    ta, tb, to = load_file(a), load_file(b), load_file(out)
    assert set(to) == set(ta)
    for k in ta:
        torch.testing.assert_close(to[k], 0.25 * ta[k] + 0.75 * tb[k], rtol=0, atol=1e-7)
    # equal coefficients by default, and the same through the Python API on models
    avg = average_models([_tiny(0), _tiny(1)])
    for k, v in avg.state_dict().items():
        torch.testing.assert_close(v, 0.5 * ta[k] + 0.5 * tb[k], rtol=0, atol=1e-7)
    # the average is a working model: it runs down and up
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert avg.upscale(avg.downscale(x)).shape == x.shape


def test_the_average_records_its_inputs_and_keeps_the_last_provenance(tmp_path: Path):
    a, b = _files(tmp_path)
    out = average_weights([a, b], tmp_path / "soup.safetensors", [0.4, 0.6])
    meta = read_metadata(out)
    assert meta["training_command"] == "sain train B" and meta["iterations"] == "300"
    src = json.loads(meta["averaged_from"])
    assert [s["model"] for s in src] == ["a", "b"]
    assert [s["sha256"] for s in src] == [file_sha256(a), file_sha256(b)]
    assert [s["iterations"] for s in src] == ["100", "300"]
    assert [s["coefficient"] for s in src] == [0.4, 0.6]


def test_coefficients_are_checked_and_normalised():
    assert parse_coefficients(None, 4) == [0.25] * 4
    assert parse_coefficients("1,1,2", 3) == [0.25, 0.25, 0.5]
    for bad, msg in [("1,2", "2 coefficients for 3"), ("1,-1,1", ">= 0"), ("0,0,0", "not all 0"), ("a,b,c", "numbers")]:
        with pytest.raises(ValueError, match=msg):
            parse_coefficients(bad, 3)


def test_the_cli_writes_the_average(tmp_path: Path, capsys):
    a, b = _files(tmp_path)
    out = tmp_path / "soup.safetensors"
    assert main(["average", str(a), str(b), "--out", str(out)]) == 0
    assert "0.5 x a + 0.5 x b" in capsys.readouterr().out
    assert out.is_file()
    # an existing output is refused without --force, and left as it was
    before = out.read_bytes()
    assert main(["average", str(a), str(b), "--coefficients", "1,0", "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err and out.read_bytes() == before
    assert main(["average", str(a), str(b), "--coefficients", "1,0", "--out", str(out), "--force"]) == 0
    assert torch.equal(load_file(out)["gmm.gmm_para"], load_file(a)["gmm.gmm_para"])


@pytest.mark.parametrize("case", ["one model", "other config", "not weights", "missing", "output is input", "suffix"])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, capsys, case):
    a, b = _files(tmp_path)
    out = tmp_path / "soup.safetensors"
    other = save_weights(_tiny(2, e_blocks=2), tmp_path / "other.safetensors")
    text = tmp_path / "notes.safetensors"
    text.write_text("not weights")
    args, msg = {
        "one model": ([a], "at least two models"),
        "other config": ([a, other], "one architecture and configuration"),
        "not weights": ([a, text], "not a valid safetensors file"),
        "missing": ([a, tmp_path / "nope.safetensors"], "nope"),
        "output is input": ([a, b], "also an input"),
        "suffix": ([a, b], "must be a .safetensors file"),
    }[case]
    target = {"output is input": b, "suffix": tmp_path / "soup.pt"}.get(case, out)
    before = {p: p.read_bytes() for p in (a, b)}
    code = main(["average", *map(str, args), "--out", str(target), "--force"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and msg in err and "Traceback" not in err
    assert not out.exists() and not (tmp_path / "soup.pt").exists()
    assert {p: p.read_bytes() for p in (a, b)} == before
