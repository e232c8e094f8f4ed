"""Training configs shipped inside the package, found by name.

The TOML recipes live in ``sain/configs/`` (in a clone, ``configs/`` at the repository root
is a link to that folder), so ``sain train sain_x2_jpeg_cpu`` works from an installed wheel
as well as from a clone::

    >>> from sain.train.presets import list_configs, resolve_config
    >>> "sain_x2_jpeg_cpu" in list_configs()
    True
    >>> resolve_config("sain_x2_jpeg_cpu").name
    'sain_x2_jpeg_cpu.toml'

Relative paths inside a config (``data.train = "../shared/datasets/train"``) are not
touched here: they stay relative to the current directory, as with any config file.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["CONFIG_DIR", "list_configs", "resolve_config"]

#: The folder of the packaged ``*.toml`` configs.
CONFIG_DIR = Path(str(resources.files("sain") / "configs"))


def list_configs() -> list[str]:
    """Names of the packaged configs (file stems, sorted): ``["irn_x2", ..., "sain_x2_jpeg_cpu", ...]``."""
    if not CONFIG_DIR.is_dir():
        return []
    return sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))


def resolve_config(name_or_path: str | Path) -> Path:
    """The config file that ``name_or_path`` stands for.

    In order: an existing file (as given, or with ``.toml`` added) wins; otherwise a
    packaged config named by its stem, with or without ``.toml`` (``sain_x2_jpeg_cpu``),
    also when written as the documented ``configs/NAME.toml`` from a directory that has
    no such file.

    Raises:
        ValueError: (one line) nothing matches; the message names the packaged configs.
    """
    p = Path(name_or_path)
    for candidate in (p, p.with_suffix(".toml")):
        if candidate.is_file():
            return candidate
    if p.parent in (Path("."), Path("configs")):
        stem = p.name[: -len(".toml")] if p.name.endswith(".toml") else p.name
        packaged = CONFIG_DIR / f"{stem}.toml"
        if stem and packaged.is_file():
            return packaged
    known = ", ".join(list_configs()) or "none"
    raise ValueError(f"config file not found: {name_or_path} (not a file, nor a packaged config: {known})")
