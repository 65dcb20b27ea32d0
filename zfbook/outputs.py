"""An output folder a verb owns: where it may be, who holds it, and what ``--force`` removes.

Every verb that writes (``train``, ``compare``, ``ablate``, ``transfer``, ``probe``,
``visualize``, ``occlude``; ``export`` writes into ``data/`` by its own ``--name`` rule)
follows one rule, :data:`RULE`, which each verb's ``--help`` prints:

* **Where.** ``--out`` is a folder of the command's own (:func:`check_place`): never the
  current folder or a folder that holds it, the repository's root, ``data/`` or anything
  inside it, the ``zfbook`` package, a folder that is, holds or lies inside one of the
  command's input folders, or the folder of an input file; ``''`` and ``.`` are the current
  folder. An existing file is refused ("… is a file; --out takes a folder").
* **Who.** While a command runs it holds the folder (:class:`FolderLock`): ``OUT/.zfbook.lock``
  is created atomically (``os.open(O_CREAT | O_EXCL)``), names the owner (pid, host, start
  time, verb, command) and carries an ``flock`` for the owner's lifetime. A second command
  into the folder is refused in one line; a lock whose owner no longer runs (its pid is
  gone, or a zombie, and nobody holds the flock) is taken over with a one-line note. The
  lock is removed on every exit: success, error, Ctrl-C. Under ``torchrun`` only rank 0
  takes it (:func:`on_main`, which also gives every rank rank 0's refusal).
* **What.** Files are written atomically (:func:`zfbook.checkpoint.save_atomic`,
  :func:`~zfbook.checkpoint.write_text_atomic`: a temporary ``.NAME.tmpPID`` beside the
  file, fsync, rename). Temporary files a killed command left behind (:func:`leftovers`: the
  pid in the name no longer runs) are removed by the next command into the folder, also
  with ``--resume``. A verb removes only files it wrote itself and recognises as its own by
  name *and* content (:class:`Owned`): ``--force`` removes those, lists them on stderr, and
  leaves every other file where it is; a file with one of the verb's names that the verb did
  not write is refused, never removed. Nothing here calls ``shutil.rmtree`` on a folder it
  did not create itself.

Which verbs need what: ``visualize`` and ``occlude`` want an empty (or new) folder, or with
``--force`` one whose only files of theirs are a previous output (other files stay beside
the new one); ``train`` the same for a run's files (``zfbook.train.check_run_folder``), or
``--resume``; ``compare``, ``ablate``, ``transfer`` and ``probe`` continue what their
``results.json`` holds and refuse a ``results.json`` they did not write.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

__all__ = ["RULE", "LOCK", "check_place", "FolderLock", "on_main", "leftovers", "clear_leftovers",
           "Owned", "OutputFolder", "held", "make_folder", "remove_if_empty", "describe", "head", "verb_of"]

#: the ``--out``/``--force`` rule, printed at the end of every writing verb's ``--help``
RULE = (
    "--out and --force (the same for every verb that writes): --out is a folder of the "
    "command's own, never the current folder or one that holds it, the repository's root, "
    "data/ (only export writes there, by --name), or a folder that is, holds or lies inside "
    "one of the command's inputs; a file is refused. While a command runs it holds the folder "
    "(OUT/.zfbook.lock, naming its pid): a second command into it is refused, and a lock left "
    "by a command that no longer runs is taken over. Every file is written atomically "
    "(temporary file, fsync, rename); temporary files a killed command left are removed by the "
    "next one. A verb never removes a file it did not write: --force removes only the verb's "
    "own files (train: last.pt, history.json, snapshots/epoch*.pt; visualize: index.html, "
    "images.json, topk.pt, LAYER/maps_*.png; occlude: its four PNGs and maps.json; transfer, "
    "probe: start OUT/results.json over), lists them, and leaves every other file where it "
    "is; a file of one of those names that the verb did not write is refused. compare, "
    "ablate, transfer, probe and train --resume continue what the folder holds.")

#: the lock file a running command keeps in its output folder
LOCK = ".zfbook.lock"
_TEMP = re.compile(r"^\.(?P<name>.+)\.tmp(?P<pid>\d+)$")   # checkpoint._replace_atomic's names


def verb_of(command: str, default: str) -> str:
    """The verb of a ``python -m zfbook VERB ...`` command line (``default`` otherwise)."""
    words = command.split()
    return words[3] if words[:3] == ["python", "-m", "zfbook"] and len(words) > 3 else default


def _root() -> Path:
    return Path(__file__).resolve().parent.parent


def _inside(a: Path, b: Path) -> bool:
    """``a`` is ``b`` or lies inside it (both resolved)."""
    return a == b or b in a.parents


# ----------------------------------------------------------------------------- where
def check_place(out, *, inputs: Iterable[tuple[str, object]] = (), flag: str = "--out") -> Path:
    """Refuse an output folder that is not the command's own, in one line naming why;
    returns ``Path(out)``. ``inputs``: ``(flag, path)`` of the command's input files and
    folders (those that do not exist, or are not paths, are skipped)."""
    from .checkpoint import data_dir
    text = os.fspath(out)
    out = Path(text)
    if text.strip() in ("", "."):
        raise ValueError(f"{flag} {text!r} is the current folder; give the command a folder of its own "
                         f"(e.g. {flag} runs/NAME)")
    if out.exists() and not out.is_dir():
        raise ValueError(f"{flag} {out} is a file; {flag} takes a folder")
    here, where = Path.cwd().resolve(), out.resolve()
    if where == here:
        raise ValueError(f"{flag} {out} is the current folder; give the command a folder of its own "
                         f"(e.g. {flag} runs/NAME)")
    if where in here.parents:
        raise ValueError(f"{flag} {out} holds the current folder; give the command a folder of its own")
    root = _root()
    if where == root or where in root.parents:
        raise ValueError(f"{flag} {out} is the repository's root{'' if where == root else ' or holds it'}; "
                         f"give the command a folder of its own (e.g. {flag} runs/NAME)")
    for folder, what in ((root / "data", "data/"), (data_dir(), "the data folder ($ZFBOOK_DATA)"),
                         (root / "zfbook", "the zfbook package")):
        folder = folder.resolve()
        if _inside(where, folder):
            raise ValueError(f"{flag} {out} is inside {what}, which holds the shipped checkpoints and "
                             "records (only export writes there, by --name); choose another folder")
    for name, path in inputs:
        if path is None or str(path) == "" or not Path(path).exists():
            continue
        p = Path(path).resolve()
        if p.is_file():
            if where == p.parent:
                raise ValueError(f"{flag} {out} is the folder of {name} {path}; an output folder never "
                                 "holds the command's input; choose another folder")
        elif _inside(where, p) or _inside(p, where):
            rel = "is" if where == p else ("lies inside" if _inside(where, p) else "holds")
            raise ValueError(f"{flag} {out} {rel} {name} {path}; an output folder is never the command's "
                             "input, inside it, or around it; choose another folder")
    return out


def make_folder(out: Path) -> Path | None:
    """Create ``out`` (and its parents) and check that files can be written in it. Returns
    the top-most folder this created (for :func:`remove_if_empty`), or None."""
    out = Path(out)
    top = None
    for p in [out, *out.parents]:
        if p.exists():
            break
        top = p
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".zfbook-probe.tmp{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as e:
        remove_if_empty(out, top)
        raise OSError(e.errno, f"--out {out} is not writable: {e.strerror or e}") from None
    return top


def remove_if_empty(out: Path, top: Path | None) -> None:
    """Remove ``out`` and its parents up to ``top`` (folders a command created) if empty."""
    if top is None:
        return
    for p in [Path(out), *Path(out).parents]:
        try:
            p.rmdir()
        except OSError:
            return
        if p == top:
            return


# ----------------------------------------------------------------------------- who
def _pid_runs(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (a zombie does not)."""
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill would end the process there: say it runs
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _flock(fd: int, block: bool) -> bool:
    """Take an exclusive ``flock`` on ``fd``; False if another open file holds it."""
    try:
        import fcntl
    except ImportError:  # not POSIX: the pid alone says who holds the folder
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
        return True
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise


class FolderLock:
    """``OUT/.zfbook.lock`` held while a command writes ``out`` (see the module docstring).

    ``acquire()`` refuses (``ValueError``, one line) when another live command holds the
    folder; ``release()`` removes the file. Use as a context manager."""

    def __init__(self, out, verb: str, command: str = "", *, note: Callable[[str], None] | None = None):
        self.out, self.verb, self.command = Path(out), verb, command
        self.path = self.out / LOCK
        self.note = note or (lambda line: print(line, file=sys.stderr, flush=True))
        self.fd: int | None = None

    def _content(self) -> bytes:
        return (json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "verb": self.verb,
                            "command": self.command}) + "\n").encode()

    def _write(self, fd: int) -> None:
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, self._content())
        os.fsync(fd)

    @staticmethod
    def _owner(fd: int) -> dict | None:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = os.read(fd, 1 << 16)
        try:
            owner = json.loads(raw.decode())
            return owner if isinstance(owner, dict) and isinstance(owner.get("pid"), int) else None
        except (ValueError, UnicodeDecodeError):
            return None

    def _busy(self, owner: dict | None, unsure: str = "") -> ValueError:
        who = (f"a zfbook {owner.get('verb', 'command')} (pid {owner['pid']} on {owner.get('host', '?')}, "
               f"since {owner.get('started', '?')})" if owner else "another zfbook command")
        tail = f"; if {unsure}, remove {self.path}" if unsure else ""
        return ValueError(f"--out {self.out} is in use by {who}; wait for it to end or choose another "
                          f"--out{tail}")

    def acquire(self) -> "FolderLock":
        for attempt in range(50):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
            except FileExistsError:
                pass
            else:
                _flock(fd, block=True)  # a taker looking at the new file lets go at once
                self._write(fd)
                self.fd = fd
                return self
            try:
                fd = os.open(self.path, os.O_RDWR)
            except FileNotFoundError:
                continue  # released meanwhile: try to create it again
            keep = False
            try:
                if not _flock(fd, block=False):
                    raise self._busy(self._owner(fd))
                try:
                    same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
                except FileNotFoundError:
                    same = False
                if not same:
                    continue  # released and replaced while we looked: look again
                owner = self._owner(fd)
                if owner is None:  # being created this instant, or garbage left by a crash
                    if time.time() - os.fstat(fd).st_mtime < 2:
                        time.sleep(0.05)
                        continue
                elif owner.get("host") != socket.gethostname():
                    raise self._busy(owner, unsure="no command runs there")
                elif owner["pid"] != os.getpid() and _pid_runs(owner["pid"]):  # no flock: the pid alone
                    raise self._busy(owner, unsure=f"process {owner['pid']} is not a zfbook command")
                self._write(fd)
                what = (f"a zfbook {owner.get('verb', 'command')} (pid {owner['pid']}, since "
                        f"{owner.get('started', '?')})" if owner else "an unreadable lock")
                self.note(f"note: --out {self.out} was held by {what} that no longer runs; taking it over")
                self.fd, keep = fd, True
                return self
            finally:
                if not keep:
                    os.close(fd)
        raise self._busy(None)

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            if os.stat(self.path).st_ino == os.fstat(self.fd).st_ino:
                os.unlink(self.path)
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def on_main(fn: Callable[[], object]):
    """Run ``fn`` on rank 0 only (all of a single process); under ``torchrun`` rank 0's
    refusal (a ``ValueError`` or ``OSError``) is raised on every rank, so the job stops
    together. Returns ``fn()`` on rank 0, None elsewhere."""
    from . import distributed
    w = distributed.world()
    result, error = None, None
    if w.main:
        try:
            result = fn()
        except (ValueError, OSError) as e:
            error = e
    if w.size > 1:
        import torch.distributed as dist
        if dist.is_available() and dist.is_initialized():
            box = [None if error is None else str(error)]
            dist.broadcast_object_list(box, src=0)
            if box[0] is not None and error is None:
                raise ValueError(box[0])
    if error is not None:
        raise error
    return result


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
        from .checkpoint import deferred_interrupts
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
