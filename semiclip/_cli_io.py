"""``semiclip fit / transform / evaluate / benchmark``: the file-based commands."""


def add_io_commands(subparsers):
    """Register the file-based subcommands on ``subparsers``."""
    return subparsers
