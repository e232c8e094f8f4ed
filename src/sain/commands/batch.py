"""Batch plumbing of the commands: many inputs, one failure each, a progress bar.

paths ─expand_inputs─> files ─plan_outputs (refuse clashes and existing files)─> jobs
jobs ─process_files (each failure reduced to one line, the others go on)─> failures

``-o`` names a folder, or (encode and decode, one input) the output file itself:
``sain encode photo.png -o thumb.webp``. A folder the command created and left empty
(every input failed) is removed again.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..checkpoint import CheckpointError
from ..imaging import list_images
from ..thumbnail import PathLike

__all__ = ["Failure", "expand_inputs", "one_line", "plan_outputs", "process_files", "refuse_aliases"]


@dataclass
class Failure:
    """An input that could not be processed, with a one-line reason."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return self.reason if str(self.path) in self.reason else f"{self.path}: {self.reason}"


def one_line(e: BaseException) -> str:
    """The first line of an error's message (``strerror: filename`` for an OSError)."""
    text = str(e).strip()
    if isinstance(e, OSError) and e.strerror and e.filename:
        text = f"{e.strerror}: {e.filename}"
    return text.splitlines()[0] if text else type(e).__name__


def expand_inputs(paths: Iterable[PathLike]) -> list[Path]:
    """Files as given, folders replaced by the images inside them (recursively, sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        out.extend(list_images(p) if p.is_dir() else [p])
    return out


def _identity(p: Path) -> tuple[str, tuple[int, int] | None]:
    """(resolved path, (device, inode) when the file exists): what makes two paths one file."""
    try:
        resolved = str(p.resolve())
    except (OSError, RuntimeError):
        resolved = str(p.absolute())
    try:
        st = os.stat(p)
        return resolved, (st.st_dev, st.st_ino)
    except OSError:
        return resolved, None


def refuse_aliases(inputs: Iterable[Path], outputs: Iterable[Path]) -> None:
    """ValueError (a usage error: exit 2, before any work, ``--force`` or not) when an
    output path is one of the inputs: the same path, through a symlink, or a hard link."""
    paths: dict[str, Path] = {}
    inodes: dict[tuple[int, int], Path] = {}
    for src in inputs:
        resolved, inode = _identity(src)
        paths[resolved] = src
        if inode is not None:
            inodes[inode] = src
    for dst in outputs:
        resolved, inode = _identity(dst)
        hit = paths.get(resolved) or (inodes.get(inode) if inode is not None else None)
        if hit is not None:
            raise ValueError(
                f"output {dst} is the input {hit} itself; refusing to overwrite an input "
                "(even with --force): choose another output folder"
            )


def output_file_target(args: argparse.Namespace, command: str, file_suffixes: Sequence[str] = ()) -> str | None:
    """Decide what ``-o`` names, before anything else reads ``args.output_dir``.

    A path that is not an existing folder and ends in one of ``file_suffixes`` (e.g.
    ``.webp`` for encode) is the output *file*: ``args.output_file`` is set to it and
    ``args.output_dir`` to its folder; its suffix (lower case, with the dot) is returned. Any
    other image-file name is a usage error (a folder called ``thumb.jpg`` is never what
    was meant); everything else is a folder (``args.output_file = None``)."""
    from ..cli import UsageError
    from ..imaging.io import IMAGE_SUFFIXES

    path = Path(args.output_dir)
    args.output_file = None
    suffix = path.suffix.lower()
    if path.is_dir() or suffix not in IMAGE_SUFFIXES:
        return None
    if suffix in file_suffixes:
        args.output_file = path
        args.output_dir = path.parent
        return suffix
    if file_suffixes:
        names = " / ".join(file_suffixes)
        raise UsageError(f"-o {path}: sain {command} writes {names} files; give a file name ending in one, or a folder")
    raise UsageError(f"-o {path}: sain {command} writes several files per input; give a folder, not a file name")


def output_path(outdir: PathLike, src: Path, suffix: str, file: PathLike | None = None) -> Path:
    """Where ``src``'s output goes: ``file`` (``-o FILE``) itself, or ``outdir/<stem>.<suffix>``."""
    return Path(file) if file is not None else Path(outdir) / f"{src.stem}.{suffix}"


def gather_inputs(
    args: argparse.Namespace, given: Sequence[Path | str], outputs_of: Callable[[Path], Sequence[Path]]
) -> tuple[str | None, list[Path]]:
    """The checks of a batch command before any model is loaded: the runtime options, the
    inputs (folders expanded; none is a usage error), ``-o`` (one input for ``-o FILE``),
    and no output that is an input. Returns the device and the inputs."""
    from ..cli import UsageError
    from .common import apply_runtime, check_output_dir, require_inputs

    device = apply_runtime(args)
    inputs = expand_inputs(given)
    require_inputs(inputs, given)
    if args.output_file is not None and len(inputs) != 1:
        raise UsageError(
            f"-o {args.output_file} names one output file, but {len(inputs)} inputs were given: give a folder instead"
        )
    check_output_dir(args.output_dir)
    refuse_aliases(inputs, [p for src in inputs for p in outputs_of(src)])
    return device, inputs


def inputs_to_do(
    args: argparse.Namespace, command: str, inputs: Sequence[Path], outputs_of: Callable[[Path], Sequence[Path]]
) -> list[Path]:
    """After the model loaded: the inputs left (``--skip-existing``), ``-o`` created and writable."""
    from .common import make_output_dir, skip_existing

    todo = skip_existing(args, command, inputs, outputs_of)
    args.created_output_dir = make_output_dir(args.output_dir)
    return todo


def finish_batch(args: argparse.Namespace, command: str, failures: list[Failure], inputs: Sequence[Path]) -> int:
    """The end of a batch command: the folders it created and left empty removed, each
    failure printed (in input order); exit status 1 if any input failed."""
    from .common import finish

    created = args.created_output_dir
    if created is not None:
        folder = Path(args.output_dir)
        while True:  # from -o up to the first folder this command created, while empty
            try:
                folder.rmdir()
            except OSError:
                break
            if folder == created:
                break
            folder = folder.parent
    return finish(command, sorted(failures, key=lambda f: inputs.index(f.path)), len(inputs))


def plan_outputs(
    inputs: Sequence[Path], outdir: PathLike, suffix: str, force: bool, file: PathLike | None = None
) -> tuple[list[tuple[Path, Path]], list[Failure]]:
    """Pair inputs with ``outdir/<stem>.<suffix>`` (or with ``file``, for one input); refuse
    existing files (unless ``force``) and two inputs with the same output, before any work
    is done."""
    outdir = Path(outdir)
    jobs: list[tuple[Path, Path]] = []
    failures: list[Failure] = []
    seen: dict[Path, Path] = {}
    for src in inputs:
        dst = output_path(outdir, src, suffix, file)
        if dst in seen:
            failures.append(Failure(src, f"same output name {dst} as {seen[dst]}"))
        elif dst.exists() and not force:
            failures.append(Failure(src, f"{dst} exists (use --force to overwrite)"))
        else:
            seen[dst] = src
            jobs.append((src, dst))
    return jobs, failures


def process_files(
    jobs: Sequence[tuple[Path, Any]],
    work: Callable[[Path, Any], Any],
    *,
    progress: bool = False,
    desc: str = "",
    report: Callable[[Any], None] | None = None,
) -> list[Failure]:
    """Run ``work(src, dst)`` for every job; an input that fails does not stop the others.

    Args:
        progress: show a tqdm bar on stderr.
        report: called with each result (e.g. to print a line), bar-safe.

    Returns:
        The failures (``ValueError``, ``OSError``, ``RuntimeError`` or ``MemoryError``,
        each reduced to one line), in input order.
    """
    from tqdm import tqdm

    failures = []
    with tqdm(
        total=len(jobs), desc=desc, unit="img", file=sys.stderr, disable=not progress, leave=False, dynamic_ncols=True
    ) as bar:
        for src, dst in jobs:
            bar.set_postfix_str(Path(src).name, refresh=False)
            try:
                result = work(src, dst)
            except (ValueError, OSError, RuntimeError, MemoryError, CheckpointError) as e:
                failures.append(Failure(Path(src), one_line(e)))
            else:
                if report is not None:
                    with bar.external_write_mode(file=sys.stdout):
                        report(result)
            bar.update(1)
    return failures
