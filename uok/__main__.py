"""``python -m uok``: the same entry point as the ``uok`` command."""

import sys

from uok.adapters.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
