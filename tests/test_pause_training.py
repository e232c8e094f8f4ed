"""scripts/pause_training.py finds a training run's whole process tree."""

from __future__ import annotations

import os

from _scripts import load_script

pt = load_script("pause_training")


def test_training_tree_takes_every_descendant_and_nothing_else():
    table = {
        100: (1, "python .venv/bin/sain train configs/x.toml --procs 2"),
        101: (100, "python -c from multiprocessing.spawn import spawn_main"),  # a rank
        102: (100, "python -c from multiprocessing.spawn import spawn_main"),
        103: (101, "python -c from multiprocessing.spawn import spawn_main"),  # its loader worker
        200: (1, "python -m pytest"),
        201: (200, "python worker"),
        os.getpid(): (1, "python scripts/pause_training.py stop sain train"),
    }
    assert pt.training_tree(table) == [100, 101, 102, 103]
    assert pt.training_tree({200: (1, "bash")}) == []


def test_process_table_reads_this_process():
    table = pt.processes()
    assert table[os.getpid()][0] == os.getppid()
