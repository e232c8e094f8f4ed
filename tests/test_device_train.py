"""scripts/device_train.py: the job strings and the ``sain train`` command each job runs
(the GPU run itself needs a lent device machine; its CPU check is in the script's docstring)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from _scripts import load_script


@pytest.fixture(scope="module")
def dt():
    return load_script("device_train")


def _args(**kw) -> argparse.Namespace:
    base = dict(device="cuda", data="pack", iters=10_000_000, batch=16, patch=128, workers=4, config=None, state=None)
    return argparse.Namespace(**{**base, **kw})


def test_parse_job(dt):
    assert dt.parse_job("sain_x4_jpeg_cpu") == ("sain_x4_jpeg_cpu", None, {})
    assert dt.parse_job("a=train_state/a.safetensors") == ("a", "train_state/a.safetensors", {})
    assert dt.parse_job("a=s.safetensors@batch=8,patch=96,iters=config,optim.lr=1e-4") == (
        "a",
        "s.safetensors",
        {"batch": "8", "patch": "96", "iters": "config", "optim.lr": "1e-4"},
    )
    for bad in ("a@batch", "a@lr=1", "=s.safetensors", "a@=3"):
        with pytest.raises(SystemExit):
            dt.parse_job(bad)


def test_job_options_replace_the_run_flags_for_that_job_only(dt, tmp_path):
    args = _args(job=["q=train_state/q.safetensors@batch=8,patch=96,iters=config,optim.lr=1e-4", "x4"])
    (q, q_state, q_opts), (x4, x4_state, x4_opts) = dt._jobs(args)
    cq = dt._command(args, q, q_state, tmp_path / "q", q_opts)
    cx = dt._command(args, x4, x4_state, tmp_path / "x4", x4_opts)
    assert cq[cq.index("--batch") + 1] == "8" and cq[cq.index("--patch") + 1] == "96"
    assert "--iters" not in cq  # the config's own schedule end
    assert cq[cq.index("--resume-from") + 1] == "train_state/q.safetensors"
    assert "optim.lr=1e-4" in cq and "optim.lr=1e-4" not in cx
    assert cx[cx.index("--batch") + 1] == "16" and cx[cx.index("--iters") + 1] == "10000000"
    assert "--resume-from" not in cx


def test_two_jobs_writing_one_state_are_refused(dt):
    with pytest.raises(SystemExit, match="same state"):
        dt._jobs(_args(job=["a=s/x.safetensors", "b=t/x.safetensors"]))


def test_prepare_keeps_the_validation_images_out_of_the_crops(dt, tmp_path):
    """The crops leave out the images the configs validate on (data.val_holdout), which travel
    whole as pack/val: a device run then validates on what a CPU run validates on."""
    import numpy as np
    from PIL import Image

    from sain.train.data import split_holdout

    src = tmp_path / "train"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(src / f"im{i}.png")
    pack = tmp_path / "pack"
    args = argparse.Namespace(data=str(src), out=str(pack), crop=32, max_mb=0.05, seed=0, holdout=2)
    assert dt.prepare(args) == 0
    _, held = split_holdout(sorted(src.iterdir()), 2)
    assert sorted(p.name for p in (pack / "val").iterdir()) == sorted(p.name for p in held)
    crops = sorted((pack / "train").iterdir())
    assert crops and all(p.suffix == ".webp" for p in crops)
    for c in crops:  # lossless, 32x32, and cut from a training image only
        a = np.asarray(Image.open(c).convert("RGB"))
        assert a.shape == (32, 32, 3)
        sources = [np.asarray(Image.open(p)) for p in sorted(src.iterdir()) if p not in held]
        assert any((s[y : y + 32, x : x + 32] == a).all() for s in sources for y in range(9) for x in range(17)), c
    # the run validates on pack/val when it is there, else on 8 of the crops
    cmd = dt._command(_args(data=str(pack / "train")), "a", None, tmp_path / "r")
    assert f"data.val={pack / 'val'}" in cmd
    cmd = dt._command(_args(data=str(tmp_path / "elsewhere")), "a", None, tmp_path / "r")
    assert "data.val_holdout=8" in cmd


def test_archive_order_puts_logs_and_exports_before_states(dt):
    names = ["b.safetensors", "a.best.safetensors", "b.log.csv", "a.safetensors", "a.log.csv"]
    ordered = [p.name for p in sorted((Path(n) for n in names), key=dt._archive_order)]
    assert ordered == ["a.log.csv", "b.log.csv", "a.best.safetensors", "a.safetensors", "b.safetensors"]
