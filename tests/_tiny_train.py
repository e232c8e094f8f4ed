"""Two training steps through `sain train` on a tiny config: the shared setup of the
plug-in tests (a new architecture or objective trains like the bundled ones)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from sain import cli


def train_two_steps(
    tmp_path: Path, model: str, train: Path, patch: int = 32, loss: str = ""
) -> tuple[Path, list[dict]]:
    """Write a config with this ``[model]`` section body (and ``[loss]`` body, if any), run
    two steps of `sain train` into ``tmp_path / "run"``; return the run folder and the
    rows of its log (every value a float, every one finite)."""
    loss_section = f"[loss]\n{loss}\n" if loss else ""
    config = tmp_path / "tiny.toml"
    config.write_text(
        f"[model]\n{model}\n"
        f"[data]\ntrain = {json.dumps(str(train))}\nval_holdout = 1\nval_crop = 32\npatch = {patch}\n"
        "batch = 2\nworkers = 0\n"
        f"{loss_section}"
        "[optim]\niters = 2\n"
        '[run]\nthreads = 1\namp = "none"\nval_every = 2\nlog_every = 1\n'
    )
    out = tmp_path / "run"
    assert cli.main(["train", str(config), "--out", str(out), "--no-progress"]) == 0
    lines = (out / "log.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert header[0] == "step" and len(lines) == 3, lines
    rows = []
    for line in lines[1:]:
        row = {k: float(v) for k, v in zip(header, line.split(","), strict=True) if v != ""}
        assert all(np.isfinite(v) for v in row.values()), row
        rows.append(row)
    return out, rows


def noise_images(folder: Path, n: int, size: int, seed: int) -> Path:
    """``n`` smooth random RGB images of ``size`` px (bicubic-enlarged noise) in a new ``folder``."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        small = rng.integers(0, 256, (size // 4, size // 4, 3), dtype=np.uint8)
        Image.fromarray(small).resize((size, size), Image.BICUBIC).save(folder / f"{i}.png")
    return folder


def train_with_each(tmp_path: Path, monkeypatch, key: str, values, hook: str) -> dict[str, list[dict]]:
    """Two `sain train` steps of a tiny SAIN for each value of ``[loss] key``; the objective's
    method ``hook`` records ``self.<key>`` and each run must have handed it the value at both
    steps. Returns each value's log rows."""
    import sain.train.trainer as trainer
    from sain.train.objective import Objective

    seen: list[str] = []

    def recording(self, *args):
        seen.append(getattr(self, key))
        return getattr(Objective, hook)(self, *args)

    monkeypatch.setattr(trainer, "Objective", type("Recording", (Objective,), {hook: recording}))
    train = noise_images(tmp_path / "train", 3, 48, 0)
    model = 'arch = "sain"\nscale = 2\ne_blocks = 1\nv_blocks = 1'
    rows = {}
    for v in values:
        (tmp_path / v).mkdir()
        seen.clear()
        _, rows[v] = train_two_steps(tmp_path / v, model, train, loss=f'{key} = "{v}"')
        assert seen == [v, v], seen
    return rows
