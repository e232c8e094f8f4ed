"""Argument types and helpers shared by the sub-commands (encode, decode, roundtrip, demo)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from ..codecs import check_quality
from ..zoo import DEFAULT_MODEL


def quality(text: str) -> int:
    """argparse type: an integer codec quality in 1..100."""
    try:
        q = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"quality must be an integer in 1..100, got {text!r}") from None
    try:
        return check_quality(q)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def qualities(text: str) -> list[int]:
    """argparse type: comma-separated codec qualities, each in 1..100, in the order given."""
    try:
        qs = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"qualities must be integers separated by commas, got {text!r}") from None
    if not qs:
        raise argparse.ArgumentTypeError(f"qualities must be in 1..100, got {text!r}")
    try:
        return [check_quality(q) for q in qs]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{e} (in {text!r})") from None


#: The smallest ``--tile`` the commands accept, in LR pixels (the Python API takes any size).
MIN_TILE = 64


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {n}")
    return n


def tile(text: str) -> str | int:
    """argparse type: 'auto', 'off', 'on' or a tile size in LR pixels."""
    if text in ("auto", "off", "on"):
        return text
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--tile must be auto, on, off or a number of pixels, got {text!r}") from None
    if n < MIN_TILE:
        raise argparse.ArgumentTypeError(
            f"--tile must be at least {MIN_TILE} LR pixels, got {n}: every tile also recomputes a "
            "border of the network's receptive radius, so small tiles multiply the work many times over"
        )
    return n


def add_common(
    p: argparse.ArgumentParser,
    model_default: str | None = DEFAULT_MODEL,
    output_help: str = "folder for the results (created if missing)",
    output_metavar: str = "OUTDIR",
) -> None:
    """Options shared by encode, decode and roundtrip."""
    p.add_argument(
        "-o",
        "--output-dir",
        required=True,
        type=Path,
        metavar=output_metavar,
        help=output_help,
    )
    help_model = "zoo name (see 'sain models') or weight file"
    p.add_argument(
        "--model", default=model_default, help=help_model + (f" (default: {model_default})" if model_default else "")
    )
    p.add_argument(
        "--tile",
        type=tile,
        default="auto",
        metavar="auto|on|off|N",
        help="process in overlapping tiles of N LR pixels (auto: above ~1 megapixel at LR; identical results)",
    )
    from ..imaging import DEFAULT_MAX_PIXELS

    p.add_argument(
        "--max-pixels",
        type=positive_int,
        default=DEFAULT_MAX_PIXELS,
        metavar="N",
        help=f"refuse images of more pixels, checked before decoding (default: {DEFAULT_MAX_PIXELS:,}; "
        "for decode, the restored size)",
    )
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.add_argument(
        "--skip-existing",
        action="store_true",
        help="skip inputs whose outputs exist already (to resume a batch), with a note",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no per-file lines")


def add_runtime(p: argparse.ArgumentParser, precision: str = "auto", device: bool = True) -> None:
    """``--precision``, ``--device`` and ``--threads``: how the network runs (see :func:`apply_runtime`)."""
    from ..precision import PRECISIONS

    p.add_argument(
        "--precision",
        default=precision,
        type=str.lower,
        choices=PRECISIONS,
        help=f"arithmetic of the network (default: {precision}; auto = the thumbnail in fp32 and "
        "the restoring pass in bf16 on CPUs where it is faster (AMX, AMD AVX512-bf16), fp16 on GPUs, fp32 elsewhere)",
    )
    if device:
        p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps, ... (default: cpu)")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads for torch (default: torch's)")


def apply_runtime(args: argparse.Namespace) -> str | None:
    """Check ``--device`` / ``--threads`` (usage errors before any work), set the threads;
    returns the device (``None`` for the CPU)."""
    import torch

    from ..cli import UsageError

    if getattr(args, "threads", None) is not None:
        if args.threads < 1:
            raise UsageError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    dev = getattr(args, "device", "cpu") or "cpu"
    try:
        d = torch.device(dev)
    except RuntimeError:
        raise UsageError(f"--device {dev!r} is not a device (cpu, cuda, cuda:1, mps, ...)") from None
    if d.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda asked for, but CUDA is not available")
    if d.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise UsageError("--device mps asked for, but MPS is not available")
    if d.type == "cpu" and getattr(args, "precision", None) == "bf16":
        from ..precision import cpu_prefers_bf16

        if not cpu_prefers_bf16():
            print(
                "note: bf16 runs slower than fp32 on this CPU (no AMX; auto picks fp32)",
                file=sys.stderr,
            )
    return None if d.type == "cpu" else dev


def add_format(p: argparse.ArgumentParser, default: str | None = "jpeg", extra_help: str = "") -> None:
    """``--format``: one of the thumbnail formats (argparse lists them on a bad value).
    ``default=None`` leaves it to the command (encode takes it from ``-o FILE``'s suffix)."""
    from ..encoding import ENCODE_FORMATS

    p.add_argument(
        "--format",
        default=default,
        type=str.lower,
        choices=ENCODE_FORMATS,
        help=f"thumbnail format (default: {'jpeg' + extra_help})",
    )


def add_codec(p: argparse.ArgumentParser, format_default: str | None = "jpeg", format_help: str = "") -> None:
    """``--format`` and ``--quality``."""
    add_format(p, format_default, format_help)
    p.add_argument("--quality", type=quality, default=75, help="codec quality 1..100 (default: 75)")


def refine_steps(text: str) -> int:
    """argparse type of ``--refine``: steps 0..10000."""
    from ..refine import check_refine_steps

    try:
        return check_refine_steps(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer in 0..10000, got {text!r}") from None


def add_refine(p: argparse.ArgumentParser, help_text: str) -> None:
    """``--refine N``: encoder-side refinement steps (:mod:`sain.refine`)."""
    p.add_argument("--refine", type=refine_steps, default=0, metavar="N", help=help_text + " (JPEG only; default 0)")


def check_format(fmt: str) -> None:
    """A usage error (exit 2) when the installed Pillow cannot write ``fmt``."""
    from ..cli import UsageError
    from ..encoding import check_format as _check_format

    try:
        _check_format(fmt)
    except ValueError as e:
        raise UsageError(str(e)) from None


def finish(command: str, failures: list, total: int) -> int:
    """Print each failure on stderr; exit status 1 if any."""
    for f in failures:
        print(f"sain {command}: {f}", file=sys.stderr)
    if failures and total > 1:
        print(f"sain {command}: {len(failures)} of {total} inputs failed", file=sys.stderr)
    return 1 if failures else 0


def show_progress(args: argparse.Namespace) -> bool:
    """Whether to draw a progress bar: not ``--quiet`` and stderr is a terminal."""
    return not args.quiet and sys.stderr.isatty()


def require_inputs(inputs: Sequence[Path], given: Sequence[Path | str]) -> None:
    """A usage error (exit 2) when the arguments name no image at all (e.g. an empty folder)."""
    from ..cli import UsageError

    if not inputs:
        names = ", ".join(str(g) for g in given)
        raise UsageError(f"no images found in {names} (looked for {', '.join(sorted(_suffixes()))})")


def _suffixes() -> set[str]:
    from ..imaging.io import IMAGE_SUFFIXES

    return set(IMAGE_SUFFIXES)


def _nearest_existing(path: Path) -> Path:
    """``path`` or its nearest existing folder above it (where ``mkdir -p`` would start)."""
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return probe


def check_output_dir(path: Path) -> None:
    """A usage error (exit 2), before any model work, when ``-o`` is a file or its folder
    (or the nearest existing folder above it, where it would be created) is not writable."""
    from ..cli import UsageError

    if path.exists() and not path.is_dir():
        raise UsageError(f"-o {path}: not a directory")
    probe = _nearest_existing(path)
    if not probe.is_dir():
        raise UsageError(f"-o {path}: not a directory ({probe} is a file)")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"output folder {probe} is not writable")


def make_output_dir(path: Path) -> Path | None:
    """Create ``-o`` and check a file can be written in it (usage errors name the folder).
    Returns the topmost folder it created (``None`` when ``path`` existed)."""
    from ..cli import UsageError

    check_output_dir(path)
    probe = _nearest_existing(path)
    created = None if probe == path else probe / path.relative_to(probe).parts[0]
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path, prefix=".sain-probe-"):
            pass
    except OSError as e:
        raise UsageError(f"output folder {path} is not writable ({e.strerror or e})") from None
    return created


def skip_existing(
    args: argparse.Namespace, command: str, inputs: Sequence[Path], outputs_of: Callable[[Path], Sequence[Path]]
) -> list[Path]:
    """The inputs left to do: with ``--skip-existing``, those whose outputs all exist are left
    out, each with a note on stderr (unless ``--quiet``)."""
    from ..cli import UsageError

    if not getattr(args, "skip_existing", False):
        return list(inputs)
    if args.force:
        raise UsageError("--skip-existing and --force contradict each other; give one")
    todo = []
    for src in inputs:
        outs = outputs_of(src)
        if outs and all(p.exists() for p in outs):
            if not args.quiet:
                print(f"sain {command}: skipped {src}: {outs[0]} exists", file=sys.stderr)
        else:
            todo.append(src)
    return todo


def color(text: str) -> tuple[int, int, int]:
    """argparse type: a colour (``white``, ``#rrggbb``, ``R,G,B``)."""
    from ..imaging.photo import parse_color

    try:
        return parse_color(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def frame_index(text: str) -> int:
    """argparse type: a frame number, from 0."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--frame must be a frame number from 0, got {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"--frame must be a frame number from 0, got {n}")
    return n


def add_photo(p: argparse.ArgumentParser) -> None:
    """``--background``, ``--frame``, ``--icc`` and ``--keep-metadata``: how a photo is read."""
    from ..imaging.metadata import ICC_MODES

    p.add_argument(
        "--background",
        type=color,
        default=(255, 255, 255),
        metavar="COLOR",
        help="colour that transparency is composited onto for JPEG, with a note (default: white; "
        "WebP and AVIF thumbnails keep the alpha channel)",
    )
    p.add_argument(
        "--frame", type=frame_index, metavar="N", help="the frame of an animated GIF/WebP (required for one)"
    )
    p.add_argument(
        "--icc",
        choices=ICC_MODES,
        default="keep",
        help="keep: the outputs carry the photo's colour profile, the stored values are used (default); "
        "convert-srgb: convert to sRGB first, untagged outputs",
    )
    p.add_argument(
        "--keep-metadata",
        action="store_true",
        help="copy the photo's EXIF (camera, date, GPS, ...; less orientation) and XMP into the outputs "
        "(default: stripped)",
    )


def print_notes(command: str, notes: Sequence[str], quiet: bool) -> None:
    """What was done to an input that its user should know (one line each, on stderr)."""
    if not quiet:
        for n in notes:
            print(f"sain {command}: note: {n}", file=sys.stderr)
