"""The public API as a pinned inventory (kornia's habit).

``tests/expected/api_inventory.json`` lists ``sain.__all__`` and the ``__all__`` of every
public submodule that defines one (modules found with ``pkgutil``; private ones, any
dotted part starting with ``_``, and ``sain.__main__`` are skipped). A name that appears in
or disappears from an ``__all__`` without the file being updated fails this test with
the names added and removed. When the change is intended, regenerate and commit the file
with the change::

    SAIN_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/test_api_inventory.py
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import sain

import _expected

INVENTORY = "api_inventory.json"


def _public_modules() -> list[str]:
    names = ["sain"]
    for info in pkgutil.walk_packages(sain.__path__, prefix="sain."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue
        names.append(info.name)
    return sorted(names)


def current_inventory() -> dict[str, list[str]]:
    """``{module: sorted(__all__)}`` for ``sain`` and each public submodule defining ``__all__``."""
    out = {}
    for name in _public_modules():
        module = importlib.import_module(name)
        exported = getattr(module, "__all__", None)
        if exported is None:
            continue
        out[name] = sorted(exported)
    return out


def inventory_diff(want: dict[str, list[str]], got: dict[str, list[str]]) -> list[str]:
    """Human-readable differences between a stored and a current inventory (empty if equal)."""
    lines = []
    for mod in sorted(set(want) | set(got)):
        if mod not in got:
            lines.append(f"{mod}: module gone, or no longer defines __all__ (was: {', '.join(want[mod])})")
            continue
        if mod not in want:
            lines.append(f"{mod}: new module with __all__: {', '.join(got[mod])}")
            continue
        added = sorted(set(got[mod]) - set(want[mod]))
        removed = sorted(set(want[mod]) - set(got[mod]))
        if added:
            lines.append(f"{mod}: names added: {', '.join(added)}")
        if removed:
            lines.append(f"{mod}: names removed: {', '.join(removed)}")
    return lines


def test_every_exported_name_exists() -> None:
    """Each name of each ``__all__`` is an attribute of its module (``from m import *`` works)."""
    missing = []
    for mod, names in current_inventory().items():
        module = importlib.import_module(mod)
        missing += [f"{mod}.{n}" for n in names if not hasattr(module, n)]
    assert not missing, f"names in __all__ that the module does not define: {', '.join(missing)}"


def test_api_inventory() -> None:
    got = current_inventory()
    if _expected.regenerating():
        _expected.write(INVENTORY, {"modules": got})
        return
    want = _expected.load(INVENTORY)["modules"]
    diff = inventory_diff(want, got)
    if diff:
        pytest.fail(
            "the public API changed without tests/expected/api_inventory.json:\n  "
            + "\n  ".join(diff)
            + f"\nIf this is intended, {_expected.REGEN_HINT}, and record it in CHANGELOG.md."
        )


def test_inventory_diff_message() -> None:
    want = {"sain": ["a", "b"], "sain.old": ["x"]}
    got = {"sain": ["b", "c"], "sain.new": ["y"]}
    assert inventory_diff(want, got) == [
        "sain: names added: c",
        "sain: names removed: a",
        "sain.new: new module with __all__: y",
        "sain.old: module gone, or no longer defines __all__ (was: x)",
    ]
    assert inventory_diff(want, want) == []
