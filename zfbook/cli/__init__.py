"""The command line: ``python -m zfbook VERB ...``.

Each verb is one module of this package with ``NAME``, ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int | None``; :data:`VERBS` lists them in the order ``--help`` shows.

Errors: a user error (a bad flag or value, a missing or damaged file, a full disk, a
damaged image in a worker) is one line on stderr, ``error: ...``, and exit status 2. Ctrl-C
is one line too, exit status 130; in ``train`` it says where the run stopped and the command
that continues it. A verb raises ``ValueError``, ``RuntimeError``, ``OSError`` or
``CheckpointError``; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import importlib
import shlex
import sys

from ..checkpoint import CheckpointError

#: the verb modules (``zfbook.cli.<name>``), in the order ``--help`` lists them
VERBS = ("train", "evaluate", "export", "compare", "ablate", "transfer", "probe", "visualize", "occlude")

#: exit status of a user error, and of Ctrl-C (128 + SIGINT, as shells report it)
USER_ERROR, INTERRUPTED = 2, 130


def _verb(name):
    return importlib.import_module(f"{__name__}.{name}")


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (with where to look) instead of the usage block."""

    def error(self, message):
        self.exit(USER_ERROR, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m zfbook", description="zfbook: Zeiler & Fergus (ECCV 2014), rebuilt.")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in VERBS:
        verb = _verb(name)
        verb.add_arguments(sub.add_parser(verb.NAME, help=verb.HELP, description=verb.HELP))
    return p


def command_line(argv=None) -> str:
    """The command as the user typed it, for the records a run writes."""
    return "python -m zfbook " + " ".join(map(shlex.quote, sys.argv[1:] if argv is None else argv))


def one_line(e: BaseException) -> str:
    """An error's message on one line: the first line, or for an error that carries a
    traceback in its message (a DataLoader worker's), the error line at its end."""
    text = str(e).strip()
    if not text:
        return type(e).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if "Traceback (most recent call last)" in text:
        name, sep, msg = lines[-1].partition(": ")
        return msg if sep and " " not in name else lines[-1]
    joined = " ".join(lines)
    return joined if len(joined) <= 600 else lines[0]


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    args.command_line = command_line(argv)
    verb = _verb(args.cmd.replace("-", "_"))
    try:
        return verb.run(args) or 0
    except KeyboardInterrupt as e:
        explain = getattr(verb, "interrupted", None)
        text = explain(args, e) if explain else "interrupted; nothing was changed"
        print(text, file=sys.stderr)
        return INTERRUPTED
    except (CheckpointError, ValueError, RuntimeError, OSError) as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return USER_ERROR
