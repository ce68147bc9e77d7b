"""The ``semiclip`` command line: demo, fit, transform, attribute, info, evaluate, benchmark.

One module per command, each with ``add_parser(subparsers)`` and
``run(args)``; heavy imports happen inside ``run`` so that
``semiclip --help`` is instant. Errors the user can fix end with one line
on stderr, ``semiclip COMMAND: error: ...``, and exit status 2.
"""

import argparse
import contextvars
import sys

from . import _attribute, _benchmark, _demo, _evaluate, _fit, _info, _transform
from ._files import printable

__all__ = ["build_parser", "main"]

COMMANDS = (_demo, _fit, _transform, _attribute, _info, _evaluate, _benchmark)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="semiclip",
        description="Distil microscopy embeddings into transcriptomics representations "
        "(Semi-Clipped + PEA).",
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"semiclip {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:  # a fresh context per command: the outputs it may only create (see check_outputs)
        return contextvars.copy_context().run(args.func, args)
    except (ValueError, TypeError, OSError, ImportError) as exc:  # OSError: disk full...
        message = printable(" ".join(str(exc).split()) or type(exc).__name__)
        print(f"semiclip {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
