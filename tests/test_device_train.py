"""scripts/device_train.py: the job strings and the ``sain train`` command each job runs
(the GPU run itself needs a lent device machine; its CPU check is in the script's docstring)."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "device_train.py"


@pytest.fixture(scope="module")
def dt():
    spec = importlib.util.spec_from_file_location("device_train", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


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
