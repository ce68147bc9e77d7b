"""The ``semiclip`` command line (``semiclip --help``); ``main(argv)`` runs it from Python."""

from ._main import main

__all__ = ["main"]
