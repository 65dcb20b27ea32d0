"""The command line: ``python -m zfbook VERB ...``.

Each verb is one module of this package with ``NAME``, ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int | None``; :data:`VERBS` lists them in the order ``--help`` shows.
A user error is one line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import importlib
import shlex
import sys

from ..checkpoint import CheckpointError

#: the verb modules (``zfbook.cli.<name>``), in the order ``--help`` lists them
VERBS = ("train", "evaluate", "export", "compare", "visualize", "occlude")


def _verb(name):
    return importlib.import_module(f"{__name__}.{name}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m zfbook", description="zfbook: Zeiler & Fergus (ECCV 2014), rebuilt.")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in VERBS:
        verb = _verb(name)
        verb.add_arguments(sub.add_parser(verb.NAME, help=verb.HELP, description=verb.HELP))
    return p


def command_line(argv=None) -> str:
    """The command as the user typed it, for the records a run writes."""
    return "python -m zfbook " + " ".join(map(shlex.quote, sys.argv[1:] if argv is None else argv))


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    args.command_line = command_line(argv)
    try:
        return _verb(args.cmd.replace("-", "_")).run(args) or 0
    except (CheckpointError, ValueError, RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
