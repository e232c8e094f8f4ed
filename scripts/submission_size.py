"""How big the commits since BASE are as a submission: the check to run before a session stops.

A session's commits land only while their diffs, added up as text over every commit, stay
under 256 MiB (and 512 MiB packed). Weight files and packed training states are binary: a
modified 65 MB state counts with its old and its new content, and replacing it twice in
one session counts four times. A session lost all its work to this once (stop 19: the
x4 state packed twice beside new weights); so pack and commit each state once, at the end.

    python scripts/submission_size.py BASE          # BASE: the last commit that landed

prints each commit's diff sizes (`git diff --binary`, base85 literals of both sides of a
binary change; and `git diff --text`) and their totals, and exits 1 when the larger total
is over ``--limit-mib`` (default 240, a margin below the 256 MiB limit; stop 18 landed
at 227 MiB: new x4 weights and two packed states).
"""

from __future__ import annotations

import argparse
import subprocess
import sys

MIB = 1 << 20


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout


def diff_bytes(parent: str, commit: str, mode: str) -> int:
    """Bytes of ``git diff --<mode> parent commit`` (mode: "binary" or "text"), streamed."""
    proc = subprocess.Popen(["git", "diff", f"--{mode}", "--no-color", parent, commit], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    total = 0
    while chunk := proc.stdout.read(1 << 20):
        total += len(chunk)
    if proc.wait() != 0:
        raise RuntimeError(f"git diff {parent} {commit} failed")
    return total


def commit_sizes(base: str) -> list[tuple[str, str, int, int]]:
    """(sha, subject, binary-diff bytes, text-diff bytes) for every commit in BASE..HEAD, oldest first."""
    rows = []
    for line in _git("rev-list", "--reverse", "--format=%H %s", "--no-commit-header", f"{base}..HEAD").splitlines():
        sha, _, subject = line.partition(" ")
        parent = f"{sha}^"
        rows.append((sha, subject, diff_bytes(parent, sha, "binary"), diff_bytes(parent, sha, "text")))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("base", help="the last commit that landed (the submission is BASE..HEAD)")
    ap.add_argument("--limit-mib", type=float, default=240.0, help="fail above this total (default 240)")
    args = ap.parse_args(argv)
    try:
        rows = commit_sizes(args.base)
    except (subprocess.CalledProcessError, RuntimeError) as e:
        print(f"submission_size: {e}", file=sys.stderr)
        return 2
    tb = tt = 0
    for sha, subject, b, t in rows:
        tb, tt = tb + b, tt + t
        print(f"{sha[:9]}  {b / MIB:8.1f} MiB binary  {t / MIB:8.1f} MiB text  {subject[:70]}")
    worst = max(tb, tt)
    print(f"total: {tb / MIB:.1f} MiB as binary diffs, {tt / MIB:.1f} MiB as text, {len(rows)} commits")
    if worst > args.limit_mib * MIB:
        print(f"over {args.limit_mib:g} MiB: squash or drop commits that replace the same binaries", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
