"""``python -m zfbook``: the command line (see :mod:`zfbook.cli`)."""
import sys

from .cli import _parser, main  # noqa: F401  (_parser: tests read the defaults)

if __name__ == "__main__":
    sys.exit(main())
