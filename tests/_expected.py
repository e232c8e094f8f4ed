"""Stored expected outputs (``tests/expected/*.json``) and their on-purpose regeneration.

A test compares what the code produces now with a JSON file kept in the repository. When a
change of output is intended (retrained weights, a new public name), regenerate the files
and commit them with the change that caused it::

    SAIN_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden.py tests/test_api_inventory.py

With the variable set, the tests rewrite their files instead of comparing, and say so with
a warning (``RegeneratedExpected``) in pytest's summary.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

EXPECTED_DIR = Path(__file__).parent / "expected"
REGEN_VAR = "SAIN_REGEN_GOLDEN"
REGEN_HINT = f"regenerate with {REGEN_VAR}=1 (see CONTRIBUTING.md)"


class RegeneratedExpected(UserWarning):
    """A file of ``tests/expected/`` was rewritten because ``SAIN_REGEN_GOLDEN=1``."""


def regenerating() -> bool:
    return os.environ.get(REGEN_VAR, "") not in ("", "0")


def load(name: str) -> dict[str, Any]:
    path = EXPECTED_DIR / name
    if not path.is_file():
        raise AssertionError(f"{path} is missing: {REGEN_HINT}")
    return json.loads(path.read_text())


def write(name: str, data: dict[str, Any]) -> Path:
    """Write ``data`` to ``tests/expected/NAME`` (stable key order, trailing newline) and warn."""
    path = EXPECTED_DIR / name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    warnings.warn(RegeneratedExpected(f"{REGEN_VAR}=1: rewrote {path}"), stacklevel=2)
    return path
