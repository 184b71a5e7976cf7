"""Entry point for ``python -m grown_train``."""

import sys

from grown_train.cli import main

if __name__ == "__main__":
    sys.exit(main())
