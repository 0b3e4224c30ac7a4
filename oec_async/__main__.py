"""``python -m oec_async``: the ``oec-backups`` command line."""

import sys

from oec_async.cli import main

if __name__ == "__main__":
    sys.exit(main())
