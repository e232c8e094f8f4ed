"""The zoo: one resolver of model names, a cache that hands out copies, checked bundled weights."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import torch

import sain
from sain import zoo
from sain.checkpoint import CheckpointError


@pytest.fixture
def tiny(tmp_path):
    torch.manual_seed(0)
    return sain.save_weights(sain.SAIN(2, e_blocks=1, v_blocks=1), tmp_path / "tiny.safetensors")


def test_table_sha256_matches_the_bundled_files() -> None:
    """A bundled file replaced (e.g. by a retrained export) without its SHA-256 in ZOO fails here."""
    bundled = [e for e in zoo.list_models() if e.available]
    assert bundled, "no bundled weights"
    for e in bundled:
        assert e.sha256 is not None, f"{e.name}: bundled but no sha256 in the ZOO table"
        assert zoo.file_sha256(e.path) == e.sha256, f"{e.name}: update ZooEntry.sha256 for {e.filename}"


def test_corrupted_bundled_file_is_refused(tmp_path, monkeypatch) -> None:
    entry = zoo.ZOO[zoo.DEFAULT_MODEL]
    copy = tmp_path / entry.filename
    shutil.copyfile(entry.path, copy)
    with open(copy, "r+b") as f:  # flip one byte far from the header: still a readable file
        f.seek(-100, 2)
        b = f.read(1)
        f.seek(-100, 2)
        f.write(bytes([b[0] ^ 1]))
    monkeypatch.setattr(zoo, "WEIGHTS_DIR", tmp_path)
    zoo.clear_cache()
    try:
        with pytest.raises(CheckpointError, match="SHA-256") as info:
            zoo.load_model(zoo.DEFAULT_MODEL)
        assert len(str(info.value).splitlines()) == 1 and zoo.DEFAULT_MODEL in str(info.value)
    finally:
        zoo.clear_cache()


def test_resolve() -> None:
    name, path, entry = zoo.resolve_model(None)
    assert name == zoo.DEFAULT_MODEL and entry is zoo.ZOO[name] and path == entry.path
    for bad, msg in (("no-such-model", "unknown model"), ("bicubic", "baseline"), ("jpeg-hr", "baseline")):
        with pytest.raises(CheckpointError, match=msg):
            zoo.resolve_model(bad)
    with pytest.raises(CheckpointError, match="sain-x2-jpeg, .*bicubic, jpeg-hr"):
        zoo.get_model("no-such-model")


def test_every_caller_gets_its_own_model(tiny) -> None:
    a = zoo.get_model(tiny)
    b = zoo.get_model(str(tiny))
    assert a is not b and a.name == b.name == "tiny"
    assert not a.training and all(not p.requires_grad for p in a.parameters())
    with torch.no_grad():
        for p in a.parameters():
            p.zero_()
    a.train()
    c = zoo.get_model(tiny)
    assert not c.training
    assert all(torch.equal(p, q) for p, q in zip(c.parameters(), b.parameters()))
    assert any(p.abs().sum() > 0 for p in c.parameters())
    trainable = zoo.load_model(tiny)
    assert all(p.requires_grad for p in trainable.parameters())


def test_rewritten_file_is_reloaded(tiny) -> None:
    first = zoo.get_model(tiny)
    time.sleep(0.01)
    sain.save_weights(sain.SAIN(2, e_blocks=1, v_blocks=0), tiny)
    second = zoo.get_model(tiny)
    assert sum(p.numel() for p in second.parameters()) != sum(p.numel() for p in first.parameters())


def test_a_model_object_passes_through() -> None:
    m = sain.SAIN(2, e_blocks=1, v_blocks=0)
    assert zoo.get_model(m) is m and zoo.model_name(m) == "sain-x2" and m.name == "sain-x2"


def test_copy_is_cheap() -> None:
    zoo.get_model(zoo.DEFAULT_MODEL)
    t0 = time.perf_counter()
    for _ in range(5):
        zoo.get_model(zoo.DEFAULT_MODEL)
    assert (time.perf_counter() - t0) / 5 < 0.5


def test_sain_x2_webp_makes_the_thumbnails_of_sain_x2_jpeg() -> None:
    """sain-x2-webp is sain-x2-jpeg's step-6800 export (bundled until stop 30, kept in
    train_state/) with only its V-blocks (and latent GMM) fine-tuned for WebP: the E-blocks,
    hence the thumbnail, are bit for bit the same, so a thumbnail made by either restores
    with either; the restoring path differs."""
    step6800 = Path(__file__).resolve().parent.parent / "train_state" / "sain_x2_jpeg_step6800.safetensors"
    jpeg, webp = (zoo.load_model(n, frozen=True) for n in (step6800, "sain-x2-webp"))
    a, b = jpeg.state_dict(), webp.state_dict()
    assert a.keys() == b.keys()
    changed = {k for k in a if not torch.equal(a[k], b[k])}
    assert changed and all(k.startswith(("comp_operations.", "gmm.")) for k in changed), sorted(changed)[:3]
    hr = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        lr = jpeg.downscale(hr)
        assert torch.equal(lr, webp.downscale(hr))
        q = torch.round(lr.clamp(0, 1) * 255) / 255
        up_j = jpeg.upscale(q, generator=torch.Generator().manual_seed(0))
        up_w = webp.upscale(q, generator=torch.Generator().manual_seed(0))
    assert float((up_j - up_w).abs().max()) > 1e-4
