"""The ``semiclip`` command line: demo, fit, transform, attribute, info, evaluate, benchmark.

One module per command, each with ``add_parser(subparsers)`` and
``run(args)``; heavy imports happen inside ``run`` so that
``semiclip --help`` is instant. Errors the user can fix end with one line
on stderr, ``semiclip COMMAND: error: ...``, and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import _attribute, _benchmark, _demo, _evaluate, _fit, _info, _transform

__all__ = ["main"]

COMMANDS = (_demo, _fit, _transform, _attribute, _info, _evaluate, _benchmark)


def build_parser() -> argparse.ArgumentParser:
    """The ``semiclip`` argument parser, one sub-command per module of ``COMMANDS``."""
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``semiclip`` command line from Python.

    ``semiclip fit ...`` in a shell is ``main(["fit", ...])``. An error the
    user can fix (a bad value, a missing file) is printed as one line on
    stderr, ``semiclip COMMAND: error: ...``, and gives status 2 instead of a
    traceback.

    Parameters
    ----------
    argv : sequence of str, default=None
        The arguments after ``semiclip`` (``["demo", "--quick"]``). None reads
        ``sys.argv[1:]``.

    Returns
    -------
    status : int
        The exit status: 0 on success, 2 on a user error. ``--help``,
        ``--version`` and unknown options exit through :class:`SystemExit`
        (argparse's behaviour).

    Examples
    --------
    >>> from semiclip.cli import main
    >>> main(["--version"])  # doctest: +SKIP
    semiclip 0.2.0.dev0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError, ImportError) as exc:  # OSError: disk full...
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"semiclip {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
