"""Where an output folder may be (:func:`check_place`), and making it (:func:`make_folder`)
and removing it again if a command left it empty (:func:`remove_if_empty`)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable


def _root() -> Path:
    return Path(__file__).resolve().parents[2]   # zfbook/outputs/place.py → the repository


def _inside(a: Path, b: Path) -> bool:
    """``a`` is ``b`` or lies inside it (both resolved)."""
    return a == b or b in a.parents


# ----------------------------------------------------------------------------- where
def check_place(out, *, inputs: Iterable[tuple[str, object]] = (), flag: str = "--out") -> Path:
    """Refuse an output folder that is not the command's own, in one line naming why;
    returns ``Path(out)``. ``inputs``: ``(flag, path)`` of the command's input files and
    folders (those that do not exist, or are not paths, are skipped)."""
    from ..checkpoint import data_dir
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
