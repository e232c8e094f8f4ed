"""benchmarks/bench_train_step.py end to end on a tiny step (slow: about a minute on 2 cores).

.venv/bin/python -m pytest -m slow tests/test_bench_train_step.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_train_step.py"


@pytest.mark.slow
def test_bench_train_step_runs_all_three_variants(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--batch", "2", "--patch", "32", "--steps", "2", "--warmup", "0"]
        + ["--quality-steps", "2", "--procs", "2", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (res_file,) = tmp_path.glob("train_step_*.json")
    res = json.loads(res_file.read_text())
    speed, quality = res["speed"], res["quality"]
    for key in ("a", "b", "c"):
        assert len(speed[key]["times_s"]) == 2 and speed[key]["median_s"] > 0, key
    assert speed["c"]["processes"] == 2 and speed["c"]["threads_each"] >= 1
    assert speed["speedup_c"] > 0 and speed["speedup_c_rounds"] > 0 and speed["c"]["conv_s"] > 0
    # (c) trained on the same data as (a) from the same weights: its terms are the whole batch's
    assert len(quality["trajectory_c"]) == 2 and quality["ok"] and quality["ok_c"]
    assert quality["trajectory_c"][0]["fit1"] == pytest.approx(quality["trajectory_a"][0]["fit1"], rel=1e-2)
    md = res_file.with_suffix(".md").read_text()
    assert "| (c) project step, 2 processes |" in md and "per-round speed-ups" in md
