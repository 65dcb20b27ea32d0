"""Checkpoints: atomic saving, safe loading (``weights_only=True``), and the shipped weights.

A training checkpoint is a plain dict of tensors and Python primitives, so loading it never
unpickles arbitrary objects. The shipped files in ``data/`` are the same format with float16
weights and no optimiser state; ``data/MANIFEST.json`` records how each was made, with each
file's sha256, which :func:`pretrained` checks before it loads a file.

Writes are atomic (a temporary file in the same folder, fsync, rename), and Ctrl-C while
files that belong together are written is held back until they are all written
(:func:`deferred_interrupts`). Every failure is one line that names the file: missing, empty,
not a zfbook checkpoint, cut short, holding foreign objects, weights that are not finite,
weights that do not fit (which tensors, which shapes), a shipped file (by name or by path)
whose sha256 differs from the manifest's, no space left on the device.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import signal
import threading
import warnings
from pathlib import Path

import torch

from .checks import integer
from .data.preprocess import Preprocess
from .models import ConvNet, build, preset

__all__ = ["CheckpointError", "FORMAT", "save_atomic", "write_text_atomic", "deferred_interrupts",
           "load_checkpoint", "model_from_checkpoint", "load_state", "pretrained", "data_dir",
           "manifest", "sha256", "SHIPPED_NAME", "parse_shipped_name", "shipped_file", "refuse_non_finite"]

FORMAT = "zfbook-checkpoint/1"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, damaged, or does not fit the model."""


def data_dir() -> Path:
    """The folder of shipped checkpoints (``$ZFBOOK_DATA`` or the repository's ``data/``)."""
    return Path(os.environ.get("ZFBOOK_DATA", Path(__file__).resolve().parent.parent / "data"))


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------- writing
def _write_error(path: Path, err: BaseException) -> OSError:
    """A one-line OSError for a failed write of ``path`` (full disk, read-only folder, ...)."""
    code = getattr(err, "errno", None)
    if code is None and "unexpected pos" in str(err):
        code = errno.ENOSPC  # how torch's zip writer reports a short write
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        free = None
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        left = f" ({free / 1e6:.1f} MB free)" if free is not None else ""
        return OSError(errno.ENOSPC, f"no space left on the device while writing {path}{left}; "
                                     "the previous file, if any, is unchanged")
    text = str(err).strip()
    reason = getattr(err, "strerror", None) or (text.splitlines()[0] if text else type(err).__name__)
    return OSError(code or errno.EIO, f"cannot write {path}: {reason}")


@contextlib.contextmanager
def deferred_interrupts():
    """Hold Ctrl-C (SIGINT) back while the block runs; it is raised as soon as the block ends.

    Used around writes that belong together (a checkpoint and its history, an exported file
    and its manifest entry), so an interrupt never leaves one without the other. Only in the
    main thread of a process whose SIGINT raises KeyboardInterrupt; elsewhere it does nothing.
    """
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    pending = []
    signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if pending:
        raise KeyboardInterrupt


def _replace_atomic(path: Path, write) -> None:
    """``write(f)`` into a temporary file beside ``path``, fsync, rename over ``path``."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        if _interrupted(e):  # Ctrl-C inside torch.save surfaces as the zip writer's error
            raise KeyboardInterrupt from None
        raise _write_error(path, e) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _interrupted(err: BaseException) -> bool:
    """Whether ``err`` was raised while a KeyboardInterrupt was being handled."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, KeyboardInterrupt):
            return True
        seen.add(id(err))
        err = err.__context__
    return False


def save_atomic(obj, path) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``.

    A failed write (a full disk, say) leaves ``path`` as it was and no temporary file, and
    raises a one-line ``OSError`` that names ``path``."""
    _replace_atomic(Path(path), lambda f: torch.save(obj, f))


def write_text_atomic(path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, as :func:`save_atomic` does."""
    _replace_atomic(Path(path), lambda f: f.write(text.encode("utf-8")))


# ----------------------------------------------------------------------------- reading
_ZIP = b"PK\x03\x04"   # torch.save writes a zip archive


def _unreadable(path: Path, err: Exception) -> CheckpointError:
    """Why ``torch.load`` failed, in one line a user can act on."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head != _ZIP:
        return CheckpointError(f"{path} is not a zfbook checkpoint (not a file written by torch.save)")
    if "weights only" in str(err).lower() or type(err).__name__ == "UnpicklingError":
        return CheckpointError(f"{path} is not a zfbook checkpoint: it holds Python objects other "
                               "than tensors and plain values, which zfbook refuses to load")
    return CheckpointError(f"{path} is damaged: a torch.save file, but cut short or corrupted "
                           f"({path.stat().st_size:,} bytes; {type(err).__name__})")


def load_checkpoint(path, map_location="cpu", *, mmap: bool = False) -> dict:
    """Load a zfbook checkpoint dict safely (``weights_only=True``); a one-line
    :class:`CheckpointError` naming the file otherwise. ``mmap=True`` maps the tensors
    instead of reading them (a cheap look at a large file)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}" + (" is a folder" if path.is_dir() else ""))
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): not a zfbook checkpoint")
    if not mmap:
        _verify_if_shipped(path)
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the error says enough
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as e:  # truncated zip, random bytes, a pickle with foreign objects ...
        raise _unreadable(path, e) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a zfbook checkpoint (it has no format {FORMAT!r} entry)")
    for key in ("preset", "num_classes", "model", "mean"):
        if key not in ckpt:
            raise CheckpointError(f"{path} is damaged: it has no {key!r} entry")
    if not isinstance(ckpt["model"], dict) or not isinstance(ckpt["mean"], torch.Tensor):
        raise CheckpointError(f"{path} is damaged: its 'model' or 'mean' entry is not what zfbook writes")
    if not mmap:  # a cheap look (mmap) reads no weights
        refuse_non_finite({**ckpt["model"], "mean": ckpt["mean"]}, path)
    return ckpt


def refuse_non_finite(state: dict, source) -> None:
    """Refuse weights holding NaN or ±inf (a run that diverged, or a damaged file): such a
    model evaluates to chance and would export like any other. One line naming ``source``
    and the tensors."""
    bad = [k for k, v in state.items() if isinstance(v, torch.Tensor) and v.is_floating_point()
           and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(f"{source} holds weights that are not finite (NaN or inf in {_few(bad)}): "
                              "a run that diverged or a damaged file; zfbook refuses to load it")


def _shape(t) -> str:
    return "×".join(map(str, t.shape)) or "a scalar"


def _few(names) -> str:
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")


def _misfit(model, state: dict) -> str:
    """Which tensors of ``state`` do not fit ``model``: wrong shapes, missing, unexpected."""
    want = model.state_dict()
    shapes = [f"{k} is {_shape(v)} in the file but {_shape(want[k])} in the model"
              for k, v in state.items() if k in want and tuple(v.shape) != tuple(want[k].shape)]
    missing = [k for k in want if k not in state]
    extra = [k for k in state if k not in want]
    parts = ([_few(shapes)] if shapes else []) + ([f"missing {_few(missing)}"] if missing else []) + \
        ([f"unexpected {_few(extra)}"] if extra else [])
    return "; ".join(parts)


def load_state(model: ConvNet, ckpt: dict, source="checkpoint") -> None:
    """Load ``ckpt``'s weights into ``model``, with a clear error when the architectures
    differ: which tensors have other shapes, and which are missing or unexpected."""
    want = getattr(model, "preset", None)
    have = ckpt["preset"]
    if want is not None and (want.name != have or model.num_classes != ckpt["num_classes"]):
        raise CheckpointError(
            f"{source} holds a {have!r} with {ckpt['num_classes']} classes, but the model is a "
            f"{want.name!r} with {model.num_classes} classes")
    if not all(isinstance(v, torch.Tensor) for v in ckpt["model"].values()):
        raise CheckpointError(f"{source} is damaged: its weights are not all tensors")
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    refuse_non_finite(state, source)
    misfit = _misfit(model, state)
    if misfit:
        raise CheckpointError(f"{source} does not fit the {have!r} model: {misfit}")
    model.load_state_dict(state)


def model_from_checkpoint(ckpt: dict, source="checkpoint") -> ConvNet:
    """Rebuild the model a checkpoint was trained as (with its run's dropout), in eval mode,
    with ``.preprocess``, ``.classes``, ``.history`` attached."""
    try:
        preset(ckpt["preset"])
    except ValueError as e:
        raise CheckpointError(f"{source} names an unknown model: {e}") from None
    try:
        model = build(ckpt["preset"], ckpt["num_classes"], dropout=(ckpt.get("config") or {}).get("dropout"))
    except (AttributeError, TypeError, ValueError) as e:
        raise CheckpointError(f"{source} is damaged: {e}") from None
    load_state(model, ckpt, source)
    model.eval()
    try:
        model.preprocess = Preprocess(ckpt["mean"].float(), model.preset.crop, model.preset.input_scale)
    except ValueError as e:
        raise CheckpointError(f"{source} is damaged: its {e}") from None
    model.classes = list(ckpt.get("classes") or range(ckpt["num_classes"]))
    model.history = ckpt.get("history", [])
    return model


# ----------------------------------------------------------------------------- shipped weights
def manifest() -> dict:
    """``data/MANIFEST.json``: file name → command, seed, epochs, accuracy, wall time, sha256."""
    path = data_dir() / "MANIFEST.json"
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path} is damaged or was replaced: it is not valid JSON "
                              f"({type(e).__name__}); restore it (e.g. git checkout -- data/MANIFEST.json)") from None
    if not isinstance(entries, dict) or not all(isinstance(v, dict) for v in entries.values()):
        raise CheckpointError(f"{path} is damaged: it is not a mapping of file name → entry")
    return entries


_VERIFIED: dict = {}   # (path, size, mtime_ns) → the sha256 already checked against the manifest


def _verify(path: Path, entry: dict) -> None:
    """Refuse a shipped file whose sha256 differs from its manifest entry (damaged or
    replaced). A check is remembered per (path, size, mtime), so a chapter that calls
    :func:`pretrained` many times hashes each file once."""
    if not path.is_file():
        raise CheckpointError(f"{path} is listed in MANIFEST.json but missing; "
                              f"restore it (e.g. git checkout -- data/{path.name})")
    want = entry.get("sha256")
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if want is None or _VERIFIED.get(key) == want:
        return
    if sha256(path) != want:
        raise CheckpointError(f"{path} does not match its sha256 in MANIFEST.json: the file is "
                              f"damaged or was replaced; restore it (e.g. git checkout -- data/{path.name})")
    _VERIFIED[key] = want


#: The file names of ``data/``: a model's name (letters, digits, ``_`` and ``-``, not
#: containing ``-epoch``), then for a snapshot ``-epoch`` and the epoch (no leading zero),
#: then ``.pt``. ``export --name`` accepts only these, and :func:`pretrained` reads them back.
SHIPPED_NAME = re.compile(r"(?P<model>[A-Za-z0-9](?:(?:(?!-epoch)[A-Za-z0-9_-])*[A-Za-z0-9])?)"
                          r"(?:-epoch(?P<epoch>0|[1-9][0-9]*))?\.pt")


def parse_shipped_name(file: str):
    """``(model, epoch)`` of a file name of ``data/`` (epoch None for a final model), or None
    if :data:`SHIPPED_NAME` does not match it."""
    m = SHIPPED_NAME.fullmatch(file) if isinstance(file, str) else None
    if m is None:
        return None
    return m["model"], None if m["epoch"] is None else int(m["epoch"])


def shipped_file(entries: dict, name: str, epoch: int | None = None) -> str:
    """The manifest's file of model ``name`` (its snapshot after ``epoch``): what
    :func:`pretrained` loads; a one-line ValueError naming the shipped models or snapshots."""
    if epoch is not None:
        epoch = integer("epoch", epoch, 0)
    file = f"{name}.pt" if epoch is None else f"{name}-epoch{epoch}.pt"
    final = entries.get(f"{name}.pt", {})
    if epoch is not None and final.get("epochs") == epoch:
        file = f"{name}.pt"  # the last snapshot is the final model itself
    if file in entries and parse_shipped_name(file) is not None:
        return file
    parsed = [p for p in map(parse_shipped_name, entries) if p is not None]
    names = sorted({m for m, _ in parsed})
    if epoch is not None and name in names:
        epochs = {e for m, e in parsed if m == name and e is not None}
        if isinstance(final.get("epochs"), int):
            epochs.add(final["epochs"])  # the final model is also a snapshot
        raise ValueError(f"no snapshot of {name!r} at epoch {epoch}; snapshots: {sorted(epochs)}")
    raise ValueError(f"unknown pretrained model {name!r}; shipped models are: {', '.join(names) or 'none'}")


def _verify_if_shipped(path: Path) -> None:
    """A file of ``data/`` listed in the manifest gets the sha256 check of :func:`pretrained`
    however it is named: by its shipped name, or by its path (or a link to it)."""
    real = path.resolve()
    if real.parent != data_dir().resolve():
        return
    entry = manifest().get(real.name)
    if entry is not None:
        _verify(real, entry)


def pretrained(name: str = "zfnet-mini", epoch: int | None = None) -> ConvNet:
    """A shipped checkpoint from ``data/``: ``zfnet-mini`` or ``alexnet-mini``; with ``epoch``,
    the zfnet-mini snapshot taken after that epoch (Fig. 4). The file's sha256 is checked
    against ``data/MANIFEST.json`` before it is loaded."""
    entries = manifest()
    file = shipped_file(entries, name, epoch)
    path = data_dir() / file
    _verify(path, entries[file])
    model = model_from_checkpoint(load_checkpoint(path), source=str(path))
    model.meta = dict(entries[file], file=file)
    return model
