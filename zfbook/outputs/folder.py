"""What a verb may remove from its folder and how it writes a whole output: the temporary
files a killed command left (:func:`leftovers`), the verb's own files (:class:`Owned`), a
folder held for a command's life (:func:`held`) and the staged, published output
(:class:`OutputFolder`)."""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from .lock import LOCK, FolderLock, _pid_runs, on_main
from .place import check_place, make_folder, remove_if_empty

_TEMP = re.compile(r"^\.(?P<name>.+)\.tmp(?P<pid>\d+)$")   # checkpoint._replace_atomic's names


@contextlib.contextmanager
def held(out, verb: str, command: str = "", *, inputs=(), temporary: Sequence[str] | None = None):
    """The whole life of an output folder around a command: :func:`check_place`, create it,
    hold it (:class:`FolderLock`), remove the :func:`leftovers` of ``temporary`` names (all
    with None); on exit, however it ends, release it and remove it again if this created it
    and nothing was written. Yields ``Path(out)``."""
    out = check_place(out, inputs=inputs)
    created = make_folder(out)
    lock = None
    try:
        lock = FolderLock(out, verb, command).acquire()
        clear_leftovers(out, temporary)
        yield out
    finally:
        if lock is not None:
            lock.release()
        remove_if_empty(out, created)


# ----------------------------------------------------------------------------- what
def leftovers(folder, names: Sequence[str] | None = None) -> list[Path]:
    """Temporary files (or folders) of an atomic write in ``folder`` whose writer no longer
    runs: ``.NAME.tmpPID`` with ``PID`` gone; with ``names``, only those of these ``NAME``s."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = _TEMP.match(p.name)
        if m and (names is None or m["name"] in names) and not _pid_runs(int(m["pid"])):
            found.append(p)
    return sorted(found)


def clear_leftovers(folder, names: Sequence[str] | None = None) -> list[Path]:
    """Remove :func:`leftovers` (a folder among them is a command's own staging folder)."""
    gone = leftovers(folder, names)
    for p in gone:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                p.unlink()
    return gone


def describe(folder: Path, files: Sequence[Path], n: int = 4) -> str:
    """The first ``n`` of ``files`` relative to ``folder``, and how many more."""
    names = [str(Path(f).relative_to(folder)) if Path(f).is_relative_to(folder) else str(f) for f in files]
    return (", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")) or "nothing"


def head(path, n: int = 4096) -> bytes:
    """The first ``n`` bytes of a file (b"" if it cannot be read): enough to recognise ours."""
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError:
        return b""


@dataclass(frozen=True)
class Owned:
    """The files a verb writes into its folder: glob ``patterns`` (relative to the folder)
    and ``ours(path, folder)``, which says from a file's content whether the verb wrote it."""
    verb: str
    patterns: tuple[str, ...]
    ours: Callable[[Path, Path], bool]

    def find(self, folder: Path) -> tuple[list[Path], list[Path]]:
        """(the verb's own files, files with one of its names that it did not write) in
        ``folder``."""
        named = sorted({p for pat in self.patterns for p in Path(folder).glob(pat) if p.is_file()})
        mine = [p for p in named if self.ours(p, Path(folder))]
        return mine, [p for p in named if p not in mine]


class OutputFolder:
    """The folder of a verb that writes a whole output at the end (``visualize``,
    ``occlude``): checked, made and held on entry (:func:`held`, rank 0 only under
    ``torchrun``); the output is built in :meth:`staging` (``OUT/.VERB.tmpPID/``) and moved
    into place by :meth:`publish`, which first removes the previous output's files
    (``force``). On exit the lock is released, the staging folder removed, and a folder this
    created and left empty removed.

    Refused on entry, in one line: a place :func:`check_place` refuses; a folder another
    command holds; without ``force``, a folder that is not empty; with ``force``, a file
    with one of the verb's names that the verb did not write."""

    def __init__(self, out, own: Owned, *, force: bool = False, inputs=(), command: str = ""):
        self.out, self.own, self.force, self.inputs, self.command = Path(out), own, force, inputs, command
        self._held = None
        self._staging: Path | None = None
        self.published = False

    def __enter__(self) -> "OutputFolder":
        on_main(self._open)
        return self

    def _open(self) -> None:
        self._held = held(self.out, self.own.verb, self.command, inputs=self.inputs)
        self._held.__enter__()
        try:
            self._check()
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def _check(self) -> None:
        mine, foreign, other = self._contents()
        if foreign:
            raise ValueError(f"{foreign[0]} was not written by zfbook {self.own.verb}, so --force will not "
                             f"remove it; move it away or choose another --out")
        if (mine or other) and not self.force:
            if mine:
                raise ValueError(f"--out {self.out} holds an earlier {self.own.verb} output "
                                 f"({describe(self.out, mine)}); add --force to replace those files (only "
                                 "them), or choose another --out")
            raise ValueError(f"--out {self.out} is not empty: it holds {describe(self.out, other)}; choose "
                             f"an empty or new folder, or add --force to write beside them (--force removes "
                             f"only {self.own.verb}'s own files)")

    def _contents(self):
        mine, foreign = self.own.find(self.out)
        known = set(mine) | set(foreign)
        other = sorted(p for p in self.out.iterdir() if p.name != LOCK and not _TEMP.match(p.name)
                       and p not in known and not (p.is_dir() and _holds_only(p, known)))
        return mine, foreign, other

    def staging(self) -> Path:
        """A new empty folder inside ``out`` to build the output in."""
        self._staging = self.out / f".{self.own.verb}.tmp{os.getpid()}"
        if self._staging.exists():
            shutil.rmtree(self._staging)
        self._staging.mkdir()
        return self._staging

    def publish(self, last: str | None = None) -> list[Path]:
        """Move the staged files into ``out``, ``last`` (the index) after all others; with
        ``force``, the previous output's files are removed first and listed on stderr
        (returned). Ctrl-C waits until this is done."""
        from ..checkpoint import deferred_interrupts
        staged = sorted(p for p in self._staging.rglob("*") if p.is_file())
        staged.sort(key=lambda p: p.name == last)
        with deferred_interrupts():
            mine, foreign, _ = self._contents()
            if foreign:  # appeared while the command ran
                raise ValueError(f"{foreign[0]} was not written by zfbook {self.own.verb}; nothing was "
                                 "replaced; move it away or choose another --out")
            for f in mine:
                f.unlink()
                with contextlib.suppress(OSError):
                    if f.parent != self.out:
                        f.parent.rmdir()  # a sub-folder of the old output, if now empty
            if mine:
                print(f"--force: removed the earlier {self.own.verb} output from {self.out}: "
                      f"{describe(self.out, mine, n=6)}", file=sys.stderr, flush=True)
            for p in staged:
                dest = self.out / p.relative_to(self._staging)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(p, dest)
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None
            self.published = True  # a Ctrl-C held back meanwhile is raised after this
        return mine

    def interrupted(self) -> str:
        """Ctrl-C's line: whether the output had been written."""
        if self.published:
            return f"interrupted after the output was written in full to {self.out}"
        return f"interrupted; nothing was written to {self.out}"

    def __exit__(self, *exc) -> None:
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None
        if self._held is not None:
            held_, self._held = self._held, None
            held_.__exit__(None, None, None)  # release, and remove the folder if this made it empty


def _holds_only(folder: Path, known: set) -> bool:
    """A sub-folder whose files are all among ``known`` (an earlier output's layer folder)."""
    files = [p for p in folder.rglob("*") if not p.is_dir()]
    return bool(files) and all(p in known for p in files)
