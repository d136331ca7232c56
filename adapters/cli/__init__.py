"""The ``uok`` command line: the machinery (:mod:`.framework`, :mod:`.registry`,
:mod:`.output`) and one module per command in :mod:`.commands`."""

from uok.adapters.cli.framework import main

__all__ = ["main"]
