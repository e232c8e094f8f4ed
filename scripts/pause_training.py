"""Pause or resume every running ``sain train`` (and all its child processes) for a benchmark.

A run with ``--procs N`` is a launcher, N ranks and their data-loader workers; stopping the
launcher alone leaves the ranks computing. This sends SIGSTOP / SIGCONT to each ``sain train``
process and to all of its descendants (Linux, /proc).

    python scripts/pause_training.py stop      # before timing something
    python scripts/pause_training.py cont      # afterwards (a rank stopped for more than
                                               # gloo's 30-minute timeout fails its run)
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path


def processes() -> dict[int, tuple[int, str]]:
    """``{pid: (parent pid, command line)}`` of every process readable in /proc."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])  # the command may contain spaces
        out[int(d.name)] = (ppid, cmd)
    return out


def training_tree(table: dict[int, tuple[int, str]]) -> list[int]:
    """The pids of every ``sain train`` process and of all their descendants."""
    me = os.getpid()
    roots = [
        pid for pid, (_, cmd) in table.items() if pid != me and "sain train" in cmd and "pause_training" not in cmd
    ]
    tree, frontier = set(roots), list(roots)
    while frontier:
        parent = frontier.pop()
        kids = [pid for pid, (ppid, _) in table.items() if ppid == parent and pid not in tree]
        tree.update(kids)
        frontier += kids
    return sorted(tree)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("action", choices=["stop", "cont"])
    args = p.parse_args(argv)
    pids = training_tree(processes())
    if not pids:
        print("no sain train process found")
        return 0
    sig = signal.SIGSTOP if args.action == "stop" else signal.SIGCONT
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    print(f"{args.action}: {len(pids)} process(es): {' '.join(map(str, pids))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
