"""``python -m uok``: the same entry point as the ``uok`` command."""

import sys

from uok.adapters.cli.framework import main

if __name__ == "__main__":
    sys.exit(main())
