"""Who holds an output folder: the lock file :data:`LOCK` (:class:`FolderLock`), and
:func:`on_main`, which takes it on rank 0 only under ``torchrun``."""
from __future__ import annotations

import errno
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Callable

#: the lock file a running command keeps in its output folder
LOCK = ".zfbook.lock"


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
    from .. import distributed
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
