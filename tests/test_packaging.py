"""The wheel built from the repository ships what an installed ``sain`` needs.

Builds a wheel (``pip wheel --no-deps --no-build-isolation``: no download, no torch needed
at build time) from a copy of the sources and checks that it contains the packaged
configs, the bundled weights and the sample photo, and that its version is
``sain.__version__`` (the one version source). Takes a few seconds.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import sain

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "sain"


def _setuptools_version() -> tuple[int, ...]:
    try:
        import setuptools
    except ImportError:
        return (0,)
    return tuple(int(x) for x in setuptools.__version__.split(".")[:2] if x.isdigit())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if not (ROOT / "pyproject.toml").is_file():
        pytest.skip("not a clone of the repository")
    if _setuptools_version() < (77,):
        pytest.skip("building needs setuptools>=77 in this environment (pip install -e '.[test]')")
    tmp = tmp_path_factory.mktemp("wheel")
    # a copy, so that the build's build/ and *.egg-info never land in (or race on) the working tree
    src = tmp / "src_copy"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    out = tmp / "dist"
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    wheels = list(out.glob("sain-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def _members(wheel: Path) -> dict[str, zipfile.ZipInfo]:
    with zipfile.ZipFile(wheel) as z:
        return {i.filename: i for i in z.infolist()}


def test_wheel_ships_configs_weights_and_sample(wheel):
    names = _members(wheel)
    configs = sorted(p.name for p in (PACKAGE / "configs").glob("*.toml"))
    weights = sorted(p.name for p in (PACKAGE / "weights").glob("*.safetensors"))
    assert len(configs) >= 9 and len(weights) >= 2
    missing = [f"sain/configs/{n}" for n in configs] + [f"sain/weights/{n}" for n in weights] + ["sain/data/sample.png"]
    missing = [m for m in missing if m not in names]
    assert not missing, f"the wheel lacks {missing}"
    with zipfile.ZipFile(wheel) as z:  # the very same bytes (not Git LFS pointers, not truncated)
        for n in weights:
            assert (
                hashlib.sha256(z.read(f"sain/weights/{n}")).digest()
                == hashlib.sha256((PACKAGE / "weights" / n).read_bytes()).digest()
            ), n
    assert not [n for n in names if n.startswith(("tests/", "configs/", "runs/", "train_state/"))]


def test_wheel_version_is_sain_version(wheel):
    with zipfile.ZipFile(wheel) as z:
        meta_name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(z.read(meta_name).decode())
    assert meta["Name"] == "sain"
    assert meta["Version"] == sain.__version__
    assert wheel.name.startswith(f"sain-{sain.__version__}-")
    entry = next(n for n in _members(wheel) if n.endswith(".dist-info/entry_points.txt"))
    with zipfile.ZipFile(wheel) as z:
        assert "sain = sain.cli:main" in z.read(entry).decode()


def test_version_is_read_without_importing_sain():
    """setuptools finds ``__version__`` statically: building needs neither torch nor sain's imports."""
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from setuptools.config.expand import read_attr\n"
        "print(read_attr('sain.__version__', package_dir={'': 'src'}, root_dir=sys.argv[1]))\n"
        "assert 'sain' not in sys.modules\n"
    )
    if _setuptools_version() < (61,):
        pytest.skip("needs setuptools>=61")
    proc = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True, cwd=ROOT / "tests")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == sain.__version__
