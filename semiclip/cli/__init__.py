"""The ``semiclip`` command line (``semiclip --help``); ``main(argv)`` runs it from Python."""

from ._main import build_parser, main

__all__ = ["build_parser", "main"]
