"""scripts/submission_size.py: a binary replaced in a later commit counts with both sides."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from _scripts import load_script


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@t"
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout


def test_replacing_a_binary_counts_its_old_and_new_content(tmp_path: Path, monkeypatch, capsys):
    mod = load_script("submission_size")
    repo = tmp_path / "r"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "a.txt").write_text("hello\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "base")
    base = _git(repo, "rev-parse", "HEAD").strip()
    n = 200_000
    for seed in (1, 2):
        (repo / "w.bin").write_bytes(os.urandom(n) + bytes([seed]))
        _git(repo, "add", ".")
        _git(repo, "commit", "-q", "-m", f"weights {seed}")
    monkeypatch.chdir(repo)
    rows = mod.commit_sizes(base)
    assert [r[1] for r in rows] == ["weights 1", "weights 2"]
    (_, _, add_b, add_t), (_, _, rep_b, rep_t) = rows
    assert add_b > 1.2 * n and add_t > n  # base85 literal of the new file; its bytes as text
    assert rep_b > 2.4 * n and rep_t > 2 * n  # a replacement: old and new content
    assert mod.main([base, "--limit-mib", str(3 * n / (1 << 20))]) == 1
    assert "over" in capsys.readouterr().err
    assert mod.main([base]) == 0
    assert mod.main(["no-such-ref"]) == 2
