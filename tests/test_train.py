"""Tests of training (``sain train``): objective, loop, checkpoints, DDP, exports, errors.

Everything runs on tiny settings so the file stays well under a minute on a busy 2-core
CPU: 32 px crops, batch 2, a handful of steps, one coupling block per stage
(SAIN ``e_blocks = v_blocks = 1``, IRN ``blocks_per_level = 1``), one torch thread, no
loader workers, on a few smooth random PNGs written to a temporary folder. Bit-identity
checks run with ``amp = "none"``.

    data (6 PNGs, one smaller than the crop) ──> run A: 6 steps uninterrupted
                                             ├─> run B: 3 steps, then --resume to 6     == A
                                             ├─> run C: SIGTERM at step 3, --resume to 6 == A
                                             └─> 2 gloo processes (torchrun): ranks equal
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import sain
from sain import cli
from sain.codecs import codec_roundtrip
from sain.imaging import bicubic_down
from sain.models import IRN, SAIN
from sain.train import ConfigError, Objective, TrainingInterrupted, load_config
from sain.train import trainer as trainer_mod
from sain.train.data import PatchDataset, find_images

SAIN_TERMS = ("fit1", "fit2", "rel", "reg", "rec")
IRN_TERMS = ("fit", "latent", "rec")
PATCH = 32


# ==================================================================================
# Helpers: data, configs, runs
# ==================================================================================
def smooth_image(h: int, w: int, seed: int) -> np.ndarray:
    """A random but natural-looking (smooth, some edges) (h, w, 3) uint8 image."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (max(h // 8, 2), max(w // 8, 2), 3)).astype(np.uint8)
    img = np.asarray(Image.fromarray(coarse).resize((w, h), Image.BICUBIC), dtype=np.float64)
    img += rng.normal(0, 3, img.shape)  # a little texture
    return np.clip(img, 0, 255).astype(np.uint8)


def write_images(folder: Path, sizes: list[tuple[int, int]], seed: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (h, w) in enumerate(sizes):
        p = folder / f"img{i:02d}.png"
        Image.fromarray(smooth_image(h, w, seed + i)).save(p)
        paths.append(p)
    return paths


TRAIN_SIZES = [(48, 48), (64, 80), (56, 64), (80, 64), (48, 72), (24, 28)]  # last one < crop


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("data")
    write_images(root / "train", TRAIN_SIZES, seed=100)
    write_images(root / "val", [(40, 48), (48, 40)], seed=200)
    (root / "empty").mkdir()
    write_images(root / "small", [(16, 16), (24, 30)], seed=300)
    return {"train": root / "train", "val": root / "val", "empty": root / "empty", "small": root / "small"}


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (str, Path)):
        return json.dumps(str(v))
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return repr(v)


def tiny_config(folders: dict[str, Path], arch: str = "sain", **sections: dict) -> dict[str, dict]:
    """A tiny, fast, bit-reproducible configuration (nested dict) for the test images."""
    model = (
        {"arch": "sain", "scale": 2, "e_blocks": 1, "v_blocks": 1, "gmm_components": 5}
        if arch == "sain"
        else {"arch": "irn", "scale": 2, "blocks_per_level": 1}
    )
    cfg = {
        "model": model,
        "data": {
            "train": str(folders["train"]),
            "val": str(folders["val"]),
            "val_crop": PATCH,
            "patch": PATCH,
            "batch": 2,
            "workers": 0,
        },
        "loss": {"codec": "jpeg", "quality": 75},
        "optim": {"iters": 6, "milestones": [4], "lr": 2e-4},  # lr halves between steps 4 and 5
        "run": {
            "seed": 10,
            "threads": 1,
            "amp": "none",
            "log_every": 1,
            "ckpt_every": 100,
            "val_every": 2,
            "out": "unused",
        },
    }
    for name, values in sections.items():
        cfg.setdefault(name, {}).update(values)
    return cfg


def write_config(path: Path, cfg: dict[str, dict]) -> Path:
    lines = []
    for section, values in cfg.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {_toml(v)}" for k, v in values.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def sain_train(*args: str) -> int:
    return cli.main(["train", *map(str, args), "--no-progress"])


def model_state(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)["model"]


def assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"{len(differ)} tensors differ, e.g. {differ[0]}"


def read_log(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


def stderr_error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("sain train: error:")]


@pytest.fixture(scope="module")
def sain_cfg(data, tmp_path_factory) -> Path:
    return write_config(tmp_path_factory.mktemp("cfg") / "sain_tiny.toml", tiny_config(data))


@pytest.fixture(scope="module")
def run_a(sain_cfg, tmp_path_factory) -> Path:
    """Run A: 6 uninterrupted steps of the tiny SAIN config, lr overridden with --set."""
    out = tmp_path_factory.mktemp("run_a")
    assert sain_train(sain_cfg, "--out", out, "--set", "optim.lr=1e-4") == 0
    return out


# ==================================================================================
# The objective on its own
# ==================================================================================
def fixed_batch(arch: str, seed: int = 0) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    hr = torch.stack(
        [
            torch.from_numpy(smooth_image(PATCH, PATCH, int(s))).permute(2, 0, 1).float() / 255
            for s in rng.integers(1000, size=2)
        ]
    )
    batch = {"hr": hr, "lr_ref": bicubic_down(hr, 2)}
    if arch == "sain":
        batch["lr_ref_codec"] = codec_roundtrip(batch["lr_ref"], "jpeg", 75)[0]
    return batch


def tiny_model(arch: str, seed: int = 0):
    torch.manual_seed(seed)
    return SAIN(2, e_blocks=1, v_blocks=1) if arch == "sain" else IRN(2, blocks_per_level=1)


@pytest.mark.parametrize("arch", ["sain", "irn"])
def test_loss_decreases_on_a_fixed_batch(arch):
    model = tiny_model(arch)
    objective = Objective(model, "jpeg", 75, lambda_fit=4.0, amp="none")
    batch = fixed_batch(arch)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for step in range(30):
        torch.manual_seed(step % 3)  # the same few latent samples, so the curve is not all noise
        terms = objective(batch)
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
        losses.append(terms["loss"].item())
    first, last = np.mean(losses[:3]), np.mean(losses[-3:])
    assert np.isfinite(losses).all()
    assert last < 0.7 * first, f"loss went {first:.1f} -> {last:.1f}: {np.round(losses, 1)}"


@pytest.mark.parametrize("arch", ["sain", "irn"])
def test_every_loss_term_is_finite_and_nonzero(arch):
    """Every term is finite and > 0, and every parameter gets a finite, non-zero gradient.

    A fresh coupling is the identity (its last convolutions are zero-initialised), so at
    step 0 the gradient stops at those zero convolutions (conv1-4 of every subnet get an
    exactly zero gradient) and a term may vanish by construction. One optimiser step
    first makes every subnet non-trivial; the check then runs on the second step.
    """
    model = tiny_model(arch)
    objective = Objective(model, "jpeg", 75, lambda_fit=4.0, amp="none")
    batch = fixed_batch(arch, seed=1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    terms = objective(batch)
    terms["loss"].backward()
    opt.step()
    opt.zero_grad()
    terms = objective(batch)
    names = SAIN_TERMS if arch == "sain" else IRN_TERMS
    assert set(terms) == set(names) | {"loss"}
    for name in (*names, "loss"):
        v = terms[name]
        assert v.dim() == 0 and v.dtype == torch.float32, name
        assert torch.isfinite(v) and v.item() > 0, f"{name} = {v.item()}"
    terms["loss"].backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert not no_grad, f"parameters outside the graph: {no_grad[:3]}"
    for n, p in model.named_parameters():
        assert torch.isfinite(p.grad).all(), n
        assert p.grad.abs().sum() > 0, f"zero gradient for {n}"


def test_sain_loss_is_the_weighted_sum_of_its_terms():
    model = tiny_model("sain")
    terms = Objective(model, "jpeg", 75, lambda_fit=16.0, lambda_rec=0.5, amp="none")(fixed_batch("sain"))
    fit = terms["fit1"] + terms["fit2"] + terms["rel"] + terms["reg"]
    torch.testing.assert_close(terms["loss"], 0.5 * terms["rec"] + 16.0 * fit / 4)


# ==================================================================================
# Data
# ==================================================================================
def test_objective_resolves_auto_amp_and_refuses_unknown_values():
    """``amp="auto"`` is bf16 autocast only on a CPU where bf16 is faster (AMX, AMD's AVX512-bf16), no autocast
    elsewhere (it once meant fp16 on the CPU: PyTorch's slow reference convolutions)."""
    from sain.precision import cpu_prefers_bf16

    obj = Objective(SAIN(scale=2), amp="auto")
    with obj.autocast(torch.device("cpu")):
        assert torch.is_autocast_enabled("cpu") == cpu_prefers_bf16()
        if cpu_prefers_bf16():
            assert torch.get_autocast_dtype("cpu") == torch.bfloat16
    with pytest.raises(ValueError, match="amp must be"):
        Objective(SAIN(scale=2), amp="fp8").autocast(torch.device("cpu"))


def test_dataset_skips_images_smaller_than_the_crop(data):
    paths = find_images(data["train"])
    ds = PatchDataset(paths, PATCH, 2, seed=10, codec="jpeg")
    assert len(paths) == 6 and ds.skipped == 1 and len(ds.paths) == 5
    a, b = ds[7], ds[7]
    assert a["hr"].shape == (3, PATCH, PATCH) and a["lr_ref"].shape == (3, PATCH // 2, PATCH // 2)
    assert a["lr_ref_codec"].shape == (3, PATCH // 2, PATCH // 2)
    for k in a:  # a sample is a pure function of (seed, index)
        assert torch.equal(a[k], b[k])
    assert not torch.equal(ds[8]["hr"], a["hr"])


# ==================================================================================
# Checkpoints and resuming
# ==================================================================================
def test_resume_is_bit_identical(run_a, sain_cfg, tmp_path):
    """3 steps, stop, --resume to 6: the same weights, bit for bit, as 6 steps in one go.

    Between the two halves the run also validates (step 3 is its last step) and crosses
    the learning-rate milestone (step 4), so both must leave the training state alone.
    """
    out = tmp_path / "run_b"
    assert sain_train(sain_cfg, "--out", out, "--set", "optim.lr=1e-4", "--iters", 3) == 0
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 3
    assert sain_train(sain_cfg, "--out", out, "--set", "optim.lr=1e-4", "--iters", 6, "--resume") == 0
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["step"] == 6
    assert_same_state(model_state(run_a), state["model"])
    # ... and the logged losses of steps 4-6 are the same numbers
    rows_a = {r["step"]: r for r in read_log(run_a)}
    rows_b = {r["step"]: r for r in read_log(out)}
    assert sorted(rows_b, key=int) == [str(s) for s in range(1, 7)]
    for s in ("4", "5", "6"):
        for k in (*SAIN_TERMS, "loss", "lr"):
            assert rows_a[s][k] == rows_b[s][k], (s, k)


def test_packed_state_resumes_closely(run_a, sain_cfg, tmp_path):
    """sain pack -> --resume-from in a fresh folder continues the run (bf16 moments: close, not exact)."""
    from sain.train.portable import unpack

    out = tmp_path / "run_p"
    assert sain_train(sain_cfg, "--out", out, "--set", "optim.lr=1e-4", "--iters", 3) == 0
    packed = tmp_path / "state.safetensors"
    assert sain_cli("pack", out / "checkpoint.pt", packed) == 0
    assert sain_cli("pack", out / "checkpoint.pt", packed) == 2  # no overwrite without --force
    full = torch.load(out / "checkpoint.pt", weights_only=True)
    state = unpack(packed)
    assert state["step"] == 3
    assert_same_state(full["model"], state["model"])
    assert torch.equal(full["torch_rng"], state["torch_rng"])
    assert state["scheduler"] == full["scheduler"]
    out2 = tmp_path / "run_q"
    assert sain_train(sain_cfg, "--out", out2, "--set", "optim.lr=1e-4", "--iters", 6, "--resume-from", packed) == 0
    resumed = torch.load(out2 / "checkpoint.pt", weights_only=True)
    assert resumed["step"] == 6
    ref = model_state(run_a)
    for k, v in resumed["model"].items():
        assert torch.allclose(v, ref[k], rtol=1e-3, atol=1e-5), k
    # a packed state only starts fresh runs: an existing checkpoint is never replaced
    assert sain_train(sain_cfg, "--out", out2, "--iters", 6, "--resume-from", packed) == 2


def test_packed_state_in_shards_reads_back_whole(run_a, tmp_path):
    """sain pack --shard-mb: files of at most that size, read back as one state; a missing shard is an error."""
    from sain.train.portable import shard_path, unpack

    full = torch.load(run_a / "checkpoint.pt", weights_only=True)
    packed = tmp_path / "state.safetensors"
    assert sain_cli("pack", run_a / "checkpoint.pt", packed, "--shard-mb", "0.2") == 0
    files = sorted(tmp_path.glob("state*.safetensors"))
    assert len(files) >= 3 and all(f.stat().st_size < 0.2e6 + 50_000 for f in files)
    state = unpack(packed)
    assert_same_state(full["model"], state["model"])
    assert state["optimizer"]["state"].keys() == full["optimizer"]["state"].keys()
    shard_path(packed, 2).unlink()
    with pytest.raises(FileNotFoundError, match="lacks its shard state.shard2.safetensors"):
        unpack(packed)


def sain_cli(*args) -> int:
    return cli.main([str(a) for a in args])


class _SigtermAtStep3(Objective):
    """The real objective, plus a SIGTERM to this very process during the third step."""

    calls = 0

    def forward(self, batch):
        type(self).calls += 1
        if type(self).calls == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return super().forward(batch)


def test_sigterm_checkpoints_then_resume_is_bit_identical(run_a, sain_cfg, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run_c"
    handler_before = signal.getsignal(signal.SIGTERM)
    _SigtermAtStep3.calls = 0
    with monkeypatch.context() as m:
        m.setattr(trainer_mod, "Objective", _SigtermAtStep3)
        code = sain_train(sain_cfg, "--out", out, "--set", "optim.lr=1e-4")
    assert code == 130
    err = capsys.readouterr().err
    assert "interrupted at step 3" in err and "--resume" in err
    assert signal.getsignal(signal.SIGTERM) is handler_before  # handlers restored
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 3
    assert not (out / "model.safetensors").exists()
    assert sain_train(sain_cfg, "--out", out, "--set", "optim.lr=1e-4", "--resume") == 0
    assert_same_state(model_state(run_a), model_state(out))


def test_trainer_stop_flag_raises_training_interrupted(data, tmp_path):
    """The library path: a Trainer whose stop flag is set saves a checkpoint and raises."""
    cfg = load_config(
        write_config(tmp_path / "c.toml", tiny_config(data, "irn")), [f"run.out={json.dumps(str(tmp_path / 'run'))}"]
    )
    trainer = trainer_mod.Trainer(cfg, progress=False, command="test")
    trainer._stop_signal = signal.SIGTERM  # as the signal handler would set it
    with pytest.raises(TrainingInterrupted, match="interrupted at step 1"):
        trainer.fit()
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"] == 1


def test_existing_checkpoint_is_not_overwritten_without_resume(run_a, sain_cfg, capsys):
    before = (run_a / "checkpoint.pt").read_bytes()
    assert sain_train(sain_cfg, "--out", run_a, "--set", "optim.lr=1e-4") == 2
    lines = stderr_error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "--resume" in lines[0]
    assert (run_a / "checkpoint.pt").read_bytes() == before


def test_resume_without_checkpoint_is_an_error(sain_cfg, tmp_path, capsys):
    assert sain_train(sain_cfg, "--out", tmp_path / "nothing", "--resume") == 2
    lines = stderr_error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "no checkpoint" in lines[0]


# ==================================================================================
# Files a run leaves behind
# ==================================================================================
def test_exported_weights_load_and_carry_metadata(run_a):
    for name in ("model.safetensors", "best.safetensors"):
        model = sain.load_checkpoint(run_a / name)
        assert isinstance(model, SAIN) and model.config() == {
            "scale": 2,
            "e_blocks": 1,
            "v_blocks": 1,
            "gmm_components": 5,
        }
        meta = model.metadata
        assert meta["training_command"].startswith("sain train ")
        assert "optim.lr=1e-4" in meta["training_command"]
        assert json.loads(meta["training_config"])["optim"]["lr"] == 1e-4
        assert meta["codec"] == "jpeg" and json.loads(meta["quality"]) == 75
    final = sain.load_checkpoint(run_a / "model.safetensors")
    assert json.loads(final.metadata["iterations"]) == 6
    best = sain.load_checkpoint(run_a / "best.safetensors")
    assert json.loads(best.metadata["iterations"]) in (2, 4, 6)
    assert np.isfinite(json.loads(best.metadata["val_psnr_y"]))
    # the final export holds exactly the checkpoint's weights
    ckpt = model_state(run_a)
    for k, v in final.state_dict().items():
        assert torch.equal(v, ckpt[k].contiguous()), k


def test_log_csv_has_a_header_and_every_term(run_a):
    rows = read_log(run_a)
    header = list(rows[0])
    for col in ("step", *SAIN_TERMS, "loss", "lr", "it_per_s", "val_psnr_y"):
        assert col in header
    assert [int(r["step"]) for r in rows] == list(range(1, 7))
    for r in rows:
        for col in (*SAIN_TERMS, "loss", "lr"):
            assert np.isfinite(float(r[col])), (r["step"], col)
    assert [r["val_psnr_y"] != "" for r in rows] == [False, True, False, True, False, True]
    assert float(rows[0]["lr"]) == 1e-4 and float(rows[-1]["lr"]) == 5e-5  # milestone at 4


def test_config_toml_is_written_and_reloads(run_a, sain_cfg):
    written = load_config(run_a / "config.toml")
    expected = load_config(sain_cfg, ["optim.lr=1e-4", f"run.out={json.dumps(str(run_a))}"])
    assert written.to_dict() == expected.to_dict()


def test_set_overrides_reach_config_toml(run_a):
    assert load_config(run_a / "config.toml").optim.lr == 1e-4
    assert "lr = 0.0001" in (run_a / "config.toml").read_text()


# ==================================================================================
# Two processes (gloo)
# ==================================================================================
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gloo_run_keeps_ranks_identical(data, tmp_path):
    cfg = write_config(
        tmp_path / "ddp.toml", tiny_config(data, optim={"iters": 3, "milestones": [2]}, run={"val_every": 100})
    )
    out = tmp_path / "ddp"
    port = _free_port()
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MASTER_PORT": str(port),
        "MASTER_ADDR": "127.0.0.1",
        "SAIN_DUMP_RANK_WEIGHTS": "1",
        "PYTHONWARNINGS": "ignore",
    }
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(port),
        "-m",
        "sain",
        "train",
        str(cfg),
        "--out",
        str(out),
        "--no-progress",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = torch.load(out / "rank0.pt", weights_only=True)
    r1 = torch.load(out / "rank1.pt", weights_only=True)
    assert_same_state(r0, r1)
    model = sain.load_checkpoint(out / "model.safetensors")
    assert json.loads(model.metadata["iterations"]) == 3
    for k, v in model.state_dict().items():
        assert torch.equal(v, r0[k].contiguous()), k
    # the ranks trained on different samples: the weights moved away from the initialisation
    init = tiny_model("sain", seed=10).state_dict()
    assert any(not torch.equal(init[k], v) for k, v in model.state_dict().items())


def test_procs_two_shares_each_step_and_matches_one_process(data, tmp_path, monkeypatch, capsys):
    """``--procs 2``: two local processes, half the batch each; the ranks stay identical, the
    run records the whole step's config, and the step is the single process's one (the
    first step's fit1 term does not depend on the latent sample: equal up to float rounding)."""
    monkeypatch.setenv("SAIN_DUMP_RANK_WEIGHTS", "1")
    monkeypatch.setenv("PYTHONWARNINGS", "ignore")
    cfg = write_config(
        tmp_path / "p.toml", tiny_config(data, optim={"iters": 3, "milestones": [2]}, run={"val_every": 3})
    )
    one, two = tmp_path / "one", tmp_path / "two"
    assert sain_train(cfg, "--out", one) == 0
    assert sain_train(cfg, "--out", two, "--procs", "2") == 0
    assert "weights written to" in capsys.readouterr().out
    assert_same_state(torch.load(two / "rank0.pt", weights_only=True), torch.load(two / "rank1.pt", weights_only=True))
    model = sain.load_checkpoint(two / "model.safetensors")
    assert json.loads(model.metadata["iterations"]) == 3
    recorded = json.loads(model.metadata["training_config"])
    assert recorded["data"]["batch"] == 2 and recorded["run"]["procs"] == 2
    assert "batch = 2" in (two / "config.toml").read_text()
    assert "x 2 processes" in model.metadata["hardware"]
    first_one, first_two = read_log(one)[0], read_log(two)[0]
    assert float(first_two["fit1"]) == pytest.approx(float(first_one["fit1"]), rel=1e-4)
    # a single-process run resumes with --procs 2 (the checkpoint holds the whole model,
    # optimiser and schedule), and its log keeps its columns: each row's loss is still the
    # weighted sum of its terms (rec + lambda_fit (fit1 + fit2 + rel + reg) / 4, lambda_fit 4)
    assert sain_train(cfg, "--out", one, "--procs", "2", "--resume", "--iters", "5") == 0
    assert json.loads(sain.load_checkpoint(one / "model.safetensors").metadata["iterations"]) == 5
    rows = read_log(one)
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5]
    for r in rows:
        terms = {k: float(r[k]) for k in ("fit1", "fit2", "rel", "reg", "rec", "loss")}
        expected = terms["rec"] + terms["fit1"] + terms["fit2"] + terms["rel"] + terms["reg"]
        assert terms["loss"] == pytest.approx(expected, rel=1e-4), r


def test_procs_errors_are_one_line(data, tmp_path, capsys):
    cfg = write_config(tmp_path / "p.toml", tiny_config(data, data={"batch": 3}))
    for args, fragment in (
        (["--procs", "2"], "divisible by 2"),
        (["--procs", "0"], "run.procs must be an integer >= 1"),
        (["--procs", "3", "--device", "cuda"], "use torchrun"),
        (["--set", "run.procs=1.5"], "run.procs"),
    ):
        assert sain_train(cfg, "--out", tmp_path / "a", *args) == 2, args
        lines = stderr_error_lines(capsys.readouterr().err)
        assert len(lines) == 1 and fragment in lines[0], (args, lines)
    assert not (tmp_path / "a").exists()
    # a rank's data error reads as the single process's, word for word
    cfg_ok = write_config(tmp_path / "r.toml", tiny_config(data))
    single = []
    for procs in ("1", "2"):
        assert sain_train(cfg_ok, "--out", tmp_path / f"e{procs}", "--procs", procs, "--data", data["small"]) == 2
        single.append(stderr_error_lines(capsys.readouterr().err))
    assert len(single[0]) == 1 and single[0] == single[1], single
    # a rank's own failure (here rank 0 refuses to overwrite a run) stops the other rank
    # and comes back as that error, one line, without a hang
    cfg2 = write_config(tmp_path / "q.toml", tiny_config(data, optim={"iters": 1, "milestones": []}))
    assert sain_train(cfg2, "--out", tmp_path / "b") == 0
    capsys.readouterr()
    assert sain_train(cfg2, "--out", tmp_path / "b", "--procs", "2") == 2
    err = capsys.readouterr().err
    lines = stderr_error_lines(err)
    assert len(lines) == 1 and "checkpoint.pt exists" in lines[0], err[-2000:]
    assert "Traceback" not in err


# ==================================================================================
# Bad configurations and inputs: exit code 2, one line on stderr, no traceback
# ==================================================================================
def _expect_usage_error(capsys, args, *fragments: str) -> None:
    assert sain_train(*args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = stderr_error_lines(err)
    assert len(lines) == 1, err
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.mark.parametrize(
    "change, fragments",
    [
        ({"nonsense": {"a": 1}}, ["unknown section [nonsense]"]),
        ({"optim": {"learning_rate": 1e-3}}, ["unknown key 'learning_rate'"]),
        ({"data": {"batch": "two"}}, ["batch must be int"]),
        ({"data": {"batch": True}}, ["batch must be int"]),
        ({"model": {"e_blocks": "five"}}, ["e_blocks must be int"]),
        ({"run": {"threads": 1.5}}, ["threads must be int"]),
        ({"data": {"val": 3}}, ["val must be str"]),
        ({"optim": {"milestones": ["4"]}}, ["milestones"]),
        ({"run": {"channels_last": 1}}, ["true or false"]),
        ({"data": {"patch": 30}}, ["patch must be a positive multiple of 4"]),
        ({"model": {"scale": 4}, "data": {"patch": 36}}, ["multiple of 8"]),
        ({"loss": {"codec": "gif"}}, ["codec", "'gif'"]),
        ({"run": {"amp": "fp8"}}, ["run.amp"]),
    ],
)
def test_bad_config_values(data, tmp_path, capsys, change, fragments):
    cfg = tiny_config(data)
    for section, values in change.items():
        cfg.setdefault(section, {}).update(values)
    path = write_config(tmp_path / "bad.toml", cfg)
    _expect_usage_error(capsys, [path, "--out", tmp_path / "run"], *fragments)
    assert not (tmp_path / "run").exists()


def test_missing_config_file(tmp_path, capsys):
    _expect_usage_error(capsys, [tmp_path / "nope.toml"], "config file not found")


def test_invalid_toml(tmp_path, capsys):
    path = tmp_path / "broken.toml"
    path.write_text("[model\narch = sain\n")
    _expect_usage_error(capsys, [path], "invalid TOML")


def test_bad_override(sain_cfg, tmp_path, capsys):
    _expect_usage_error(capsys, [sain_cfg, "--out", tmp_path / "r", "--set", "optim.nope=1"], "unknown key")
    _expect_usage_error(capsys, [sain_cfg, "--out", tmp_path / "r", "--set", "lr=1"], "section.key=value")


@pytest.mark.parametrize(
    "folder, fragment",
    [
        ("missing", "data folder not found"),
        ("empty", "no images"),
        ("small", "no training image is at least 32x32"),
    ],
)
def test_unusable_data_folder(data, tmp_path, capsys, folder, fragment):
    train = data.get(folder, tmp_path / "does_not_exist")
    path = write_config(tmp_path / "c.toml", tiny_config(data, data={"train": str(train)}))
    _expect_usage_error(capsys, [path, "--out", tmp_path / "run"], fragment)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_config_errors_from_the_library():
    with pytest.raises(ConfigError, match="unknown section"):
        sain.train.config.from_dict({"modle": {}})
    with pytest.raises(ConfigError, match="must look like section.key=value"):
        load_config(None, ["iters=3"])
    cfg = load_config(None, ["optim.lr=1e-4", "model.e_blocks=2", "data.val='x'", "model.e_blocks=none"])
    assert cfg.optim.lr == 1e-4 and cfg.model.e_blocks is None and cfg.data.val == "x"


def test_resume_follows_the_configs_learning_rate(sain_cfg, tmp_path):
    """A schedule changed on resume takes effect (the checkpoint's lr does not win)."""
    out = tmp_path / "run_lr"
    assert sain_train(sain_cfg, "--out", out, "--iters", 2, "--set", "optim.milestones=[100]") == 0
    assert (
        sain_train(
            sain_cfg, "--out", out, "--iters", 4, "--resume", "--set", "optim.lr=5e-4", "--set", "optim.milestones=[3]"
        )
        == 0
    )
    lrs = {r["step"]: float(r["lr"]) for r in read_log(out)}
    assert lrs["3"] == pytest.approx(2.5e-4) and lrs["4"] == pytest.approx(2.5e-4)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_stop_signal_to_the_process_group_with_data_workers_checkpoints(sain_cfg, tmp_path, sig):
    """Ctrl-C in a terminal (SIGINT) and job schedulers, systemd or `docker stop` (SIGTERM)
    signal every process of the group, data workers included: the workers must leave it to
    the main process, which checkpoints and exits 130."""
    import subprocess
    import sys
    import time

    out = tmp_path / "run_w"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sain",
            "train",
            str(sain_cfg),
            "--out",
            str(out),
            "--workers",
            "1",
            "--iters",
            "100000",
            "--no-progress",
            "--set",
            "run.ckpt_every=100000",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "log.csv").exists():
        time.sleep(0.2)
    time.sleep(1.0)
    os.killpg(proc.pid, sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-1000:]
    assert "checkpoint saved" in err
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] >= 1


@pytest.mark.parametrize("to_group", [True, False], ids=["ctrl-c-to-group", "sigterm-to-parent"])
def test_stop_signal_with_procs_stops_every_rank_with_a_checkpoint(sain_cfg, tmp_path, to_group):
    """--procs 2: Ctrl-C reaches the whole group; a scheduler's SIGTERM may reach the parent
    only, which forwards it. Either way every rank stops at the end of its step, rank 0 writes
    the checkpoint, the command exits 130, and no process of the run is left behind."""
    import subprocess
    import sys
    import time

    out = tmp_path / "run_p"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sain", "train", str(sain_cfg), "--out", str(out), "--procs", "2"]
        + ["--iters", "100000", "--no-progress", "--set", "run.ckpt_every=100000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"},
    )
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "log.csv").exists():
        time.sleep(0.2)
    time.sleep(1.0)
    if to_group:
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-1500:]
    assert "checkpoint saved" in err and "Traceback" not in err, err[-1500:]
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] >= 1
    for _ in range(50):  # the ranks (and multiprocessing's helper) are gone
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("processes of the run are still alive")


CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("name", ["sain_x2_jpeg", "sain_x4_jpeg", "sain_x2_webp", "irn_x2", "irn_x4"])
def test_paper_configs_hold_the_paper_recipe(name):
    cfg = load_config(CONFIG_DIR / f"{name}.toml")
    arch, scale = name.split("_")[0], int(name.split("_")[1][1])
    assert (cfg.model.arch, cfg.model.scale) == (arch, scale)
    assert cfg.data.batch == 16 and cfg.data.patch == (128 if arch == "sain" else 144)
    assert cfg.optim.iters == 500_000 and cfg.optim.milestones == [100_000, 200_000, 300_000, 400_000]
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.clip_grad, cfg.run.seed) == (2e-4, 1e-5, 10.0, 10)
    assert cfg.lambda_fit == (4.0 if scale == 2 else 16.0)
    if name.endswith("webp"):
        assert cfg.loss.codec == "webp"


def test_every_shipped_config_loads():
    names = sorted(p.name for p in CONFIG_DIR.glob("*.toml"))
    assert len(names) >= 9
    for name in names:
        load_config(CONFIG_DIR / name)


def test_train_only_changes_just_the_named_modules(data, tmp_path, capsys):
    """``optim.train_only``: the named modules learn, everything else keeps its initial
    values bit for bit (the V-blocks fine-tune of a WebP model from sain-x2-jpeg relies on
    its thumbnails staying those of the initial model); a prefix naming nothing is refused."""
    init = tmp_path / "init"
    base = tiny_config(data, optim={"iters": 2, "milestones": [100]}, run={"val_every": 100})
    assert sain_train(write_config(tmp_path / "base.toml", base), "--out", init) == 0
    start = model_state(init)
    weights = next(init.glob("*.safetensors"))
    cfg = tiny_config(
        data,
        optim={"iters": 3, "milestones": [100], "train_only": ["comp_operations", "gmm"]},
        run={"val_every": 100, "init": str(weights)},
    )
    out = tmp_path / "vonly"
    assert sain_train(write_config(tmp_path / "vonly.toml", cfg), "--out", out) == 0
    after = model_state(out)
    changed = {k for k in after if not torch.equal(after[k], start[k])}
    assert changed and all(k.startswith(("comp_operations.", "gmm.")) for k in changed), sorted(changed)
    assert any(k.startswith("comp_operations.") for k in changed)
    assert all(torch.equal(after[k], start[k]) for k in after if k.startswith("down_operations."))
    # the optimiser holds state for the trained parameters only
    ckpt = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)
    n_trained = sum(
        1
        for k in dict(SAIN(2, e_blocks=1, v_blocks=1).named_parameters())
        if k.startswith(("comp_operations.", "gmm."))
    )
    assert len(ckpt["optimizer"]["state"]) == n_trained
    # resumable like any run
    assert sain_train(write_config(tmp_path / "vonly.toml", cfg), "--out", out, "--iters", 4, "--resume") == 0
    bad = tiny_config(data, optim={"iters": 1, "train_only": ["v_blocks"]}, run={"val_every": 100})
    _expect_usage_error(
        capsys, [write_config(tmp_path / "bad.toml", bad), "--out", tmp_path / "bad"], "v_blocks", "names no parameter"
    )
    assert not (tmp_path / "bad").exists()
