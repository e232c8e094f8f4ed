"""The ``sain`` command: one sub-command per job (``sain COMMAND --help`` explains each).

Exit codes: 0 ok, 1 some inputs failed (each named on stderr), 2 usage or bad input.
Errors are one line on stderr, never a traceback (``SAIN_DEBUG=1`` shows tracebacks).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

# name -> module in sain.commands defining add_arguments(parser) and run(args) -> int
COMMANDS = {
    "encode": "Downscale photos into small JPEG/WebP/AVIF thumbnails.",
    "decode": "Restore full-resolution PNGs from thumbnails.",
    "roundtrip": "Encode + decode a photo and compare with bicubic at the same bytes.",
    "demo": "SAIN vs bicubic on the bundled sample photo at several qualities.",
    "info": "Show what a thumbnail records: model, sizes, codec quality (its tables and metadata).",
    "models": "List the bundled and known models.",
    "train": "Train SAIN or the IRN baseline on a folder of images.",
    "average": "Average the weights of several models of one architecture (a model soup).",
    "pack": "Pack a training checkpoint into a portable state file (to resume elsewhere).",
    "eval": "Evaluate models on benchmark folders (the paper's protocol).",
    "serve": "Serve the API and a comparison web page over HTTP (needs sain[serve]).",
}


class UsageError(Exception):
    """Bad command-line usage or bad input: exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="sain",
        description="Compression-aware image rescaling (SAIN, AAAI 2023): make small thumbnails that "
        "survive JPEG/WebP and restore the full-resolution photo from them.",
    )
    parser.add_argument("--version", action="version", version=f"sain {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        mod = importlib.import_module(f"sain.commands.{name}")
        p = sub.add_parser(
            name,
            help=help_text,
            description=getattr(mod, "DESCRIPTION", help_text),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    from .runtime import configure_allocator

    configure_allocator()  # large tensors reused instead of re-faulted (see sain.runtime)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt as e:
        msg = str(e)
        print(f"sain {args.command}: {msg or 'interrupted'}", file=sys.stderr)
        return 130
    except (UsageError, ValueError, FileNotFoundError, FileExistsError, OSError, RuntimeError) as e:
        if os.environ.get("SAIN_DEBUG"):
            raise
        text = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        print(f"sain {args.command}: error: {text}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
