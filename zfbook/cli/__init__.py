"""The command line: ``python -m zfbook VERB ...``.

Each verb is one module of this package with ``NAME``, ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int | None``; :data:`VERBS` lists them in the order ``--help`` shows.

Errors: a user error (a bad flag or value, a missing or damaged file, a full disk, a
damaged image in a worker) is one line on stderr, ``error: ...``, and exit status 2. Ctrl-C
is one line too, exit status 130; in ``train`` it says where the run stopped and the command
that continues it. Under ``torchrun`` rank 0 prints these lines once (another rank only
names a file that it alone read) and every rank exits with the same status; torchrun then
reports the failed processes in its own words. A verb raises ``ValueError``, ``RuntimeError``, ``OSError`` or
``CheckpointError``; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
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
        self.exit(USER_ERROR, f"error: {self.prog}: {message} (see {self.prog} --help)\n" if rank() == 0 else None)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m zfbook", description="zfbook: Zeiler & Fergus (ECCV 2014), rebuilt.")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in VERBS:
        verb = _verb(name)
        verb.add_arguments(sub.add_parser(verb.NAME, help=verb.HELP, description=verb.HELP))
    return p


def command_line(argv=None) -> str:
    """The command as the user typed it, for the records a run writes; an absolute path
    is written relative to the current folder (:func:`relative_command`). Under torchrun it
    starts with the torchrun command that started this process (:func:`launcher`), so that
    a command printed from it (the one that continues an interrupted run) does what it says."""
    argv = sys.argv[1:] if argv is None else argv
    return " ".join(shlex.quote(_relative(a)) for a in [*launcher(), *argv])


def rank() -> int:
    """This process's rank under torchrun, 0 otherwise: only rank 0 prints errors and notes."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def _parent_command() -> list[str]:
    """The parent process's command line (Linux), or [] where it cannot be read."""
    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as f:
            return [w.decode(errors="replace") for w in f.read().split(b"\0") if w]
    except OSError:
        return []


def launcher() -> list[str]:
    """The words before the verb: ``python -m zfbook``, or under torchrun the torchrun
    command that started this process. That is the parent process's command line (on
    Linux) without the arguments torchrun passed on to this one; elsewhere it is rebuilt
    from torchrun's environment (``torchrun --nproc_per_node N -m zfbook``)."""
    if "TORCHELASTIC_RUN_ID" not in os.environ:
        return ["python", "-m", "zfbook"]
    ours, words = sys.argv[1:], _parent_command()
    if len(words) > len(ours) and words[len(words) - len(ours):] == ours:
        words = words[:len(words) - len(ours)]
        names = [os.path.basename(w) for w in words]
        if "torchrun" in names[:2]:  # `torchrun ...`, started as `python .../torchrun ...`
            return ["torchrun", *words[names.index("torchrun") + 1:]]
        if words[1:3] == ["-m", "torch.distributed.run"]:
            return ["python", *words[1:]]
    local = os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1"))
    nodes = int(os.environ.get("WORLD_SIZE", local)) // max(1, int(local))
    return ["torchrun", *([f"--nnodes={nodes}"] if nodes > 1 else ["--standalone"]),
            f"--nproc_per_node={local}", "-m", "zfbook"]


def _relative(arg: str) -> str:
    """An absolute path argument, or the value of ``--flag=/path``, relative to the current
    folder; any other argument unchanged."""
    flag, eq, value = arg.partition("=") if arg.startswith("-") else ("", "", arg)
    return f"{flag}{eq}{os.path.relpath(value)}" if os.path.isabs(value) else arg


def relative_command(command: str) -> str:
    """``command`` with every absolute path in it made relative to the current folder, so
    that a record names no folder of the machine that made it (``--out /home/me/runs/a``
    run from ``/home/me`` becomes ``--out runs/a``)."""
    words = shlex.split(command)
    relative = [_relative(w) for w in words]
    return command if relative == words else " ".join(map(shlex.quote, relative))


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
        if rank() == 0:
            print(text, file=sys.stderr)
        return INTERRUPTED
    except (CheckpointError, ValueError, RuntimeError, OSError) as e:
        # under torchrun every rank meets the same bad flag or file: rank 0 says it once. A
        # file one rank reads alone (an image of its shard) is that rank's to name.
        if rank() == 0:
            print(f"error: {one_line(e)}", file=sys.stderr)
        elif isinstance(e, OSError):
            print(f"error: rank {rank()}: {one_line(e)}", file=sys.stderr)
        return USER_ERROR
