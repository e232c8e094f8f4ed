"""Atomic file writes (a result appears complete under its name, or not at all) and the
checks on an output path before any work (exists, is the input, is a folder)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a hidden temporary path beside ``path``; rename it onto ``path`` on success.

    On any error (or Ctrl-C) the temporary file is removed and ``path`` is untouched.
    """
    dst = Path(path)
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        yield tmp
        os.replace(tmp, dst)
    except OSError as e:
        if e.filename is not None and Path(e.filename) == tmp:  # name the user's file, not ours
            raise type(e)(e.errno, e.strerror, str(dst)) from None
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (fsync'ed temporary file, then rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


@contextlib.contextmanager
def atomic_paths(paths: Sequence[str | os.PathLike]) -> Iterator[list[Path]]:
    """:func:`atomic_path` for a set of files written together: all appear, or none.

    Yields one hidden temporary path per target; once the block succeeds, each is renamed
    onto its target. On any error (or Ctrl-C), in the block or during the renames, every
    temporary and every target already renamed is removed, so no partial set remains
    (with ``--force``, the targets it replaced are gone too).
    """
    dsts = [Path(p) for p in paths]
    tmps = [d.with_name(f".{d.name}.{uuid.uuid4().hex[:12]}.tmp") for d in dsts]
    done: list[Path] = []
    try:
        yield tmps
        for tmp, dst in zip(tmps, dsts, strict=True):
            os.replace(tmp, dst)
            done.append(dst)
    except BaseException:
        for dst in done:
            with contextlib.suppress(OSError):
                dst.unlink()
        raise
    finally:
        for tmp in tmps:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def into_folder(dst: str | os.PathLike, src: Path, suffix: str) -> Path:
    """``dst`` itself, or ``dst/<src stem>.<suffix>`` when ``dst`` is a folder: an existing
    one, or a path written with a trailing slash (created)."""
    text = os.fspath(dst)
    d = Path(dst)
    if d.is_dir() or text.endswith(("/", os.sep)):
        d.mkdir(parents=True, exist_ok=True)
        return d / f"{src.stem}.{suffix}"
    return d


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name the same file (after symlinks; hard links via ``samefile``)."""
    try:
        pa, pb = Path(a), Path(b)
        if pa.resolve() == pb.resolve():
            return True
        return pa.exists() and pb.exists() and os.path.samefile(pa, pb)
    except (OSError, RuntimeError):
        return False


def check_target(dst: Path, force: bool, src: str | os.PathLike | None = None) -> None:
    """ValueError when ``dst`` is the input ``src`` (even with ``force``); FileExistsError
    when ``dst`` exists and not ``force``; IsADirectoryError for a folder."""
    if src is not None and same_file(src, dst):
        raise ValueError(f"output {dst} is the input {src} itself; refusing to overwrite it (choose another folder)")
    if dst.exists() and not force:
        raise FileExistsError(f"{dst} exists (use --force to overwrite)")
    if dst.exists() and dst.is_dir():
        raise IsADirectoryError(f"{dst} is a directory")
