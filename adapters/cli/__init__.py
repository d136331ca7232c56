"""The ``uok`` command line. Each sub-command lives in its own module and
registers itself in :data:`uok.adapters.cli.main.COMMANDS`."""

from uok.adapters.cli.main import main

__all__ = ["main"]
