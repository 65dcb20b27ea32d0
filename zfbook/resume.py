"""The run folder and resume (:func:`zfbook.train.train`): what a run may do with its folder,
whether a checkpoint continues the same run, and what each epoch's checkpoint holds.

Each epoch ends with an atomic checkpoint (:func:`_save_epoch`) holding the model, optimiser,
scheduler, AMP scaler, RNG states (:func:`_rng_state`), mean image and history, so
``resume=True`` continues exactly: on the CPU a run killed mid-epoch and resumed ends
bit-identical to an uninterrupted one.

The run folder is protected (:mod:`zfbook.outputs`): it is never the current folder, the
repository, ``data/`` or the data root; a run holds it with a lock file for its whole
length (:func:`_hold`), so a second run into it is refused; a new run refuses a folder that
is not empty (``force=True`` removes the old run's files first, and only those:
:func:`check_run_folder`); temporary files of a killed run are removed, also on ``resume``;
``resume=True`` refuses a checkpoint of a different run (preset, dataset, data root and
classes, seeds, recipe, world size: :func:`check_same_run`, :func:`_world_diffs`;
``force=True`` continues anyway), and every number is checked before any data is read. A
recipe field the resumed run was not given (``epochs``, say) is the checkpoint's
(:func:`_resumed_config`): the run keeps its own length.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from . import outputs
from .checkpoint import CheckpointError, load_checkpoint, save_atomic, write_text_atomic
from .data.embedded import WORLDS

if TYPE_CHECKING:
    from .train import Config

#: the files a run writes into its folder (besides ``snapshots/epoch{E}.pt``)
RUN_FILES = ("last.pt", "history.json")


# ----------------------------------------------------------------------------- the run folder
def _snapshot_files(out: Path) -> list[Path]:
    snaps = out / "snapshots"
    return sorted(snaps.glob("epoch*.pt")) if snaps.is_dir() else []


def _leftovers(out: Path) -> list[Path]:
    """Temporary files of a write that a killed run left (``.last.pt.tmp123``,
    ``snapshots/.epoch5.pt.tmp123``: the process 123 no longer runs)."""
    snaps = out / "snapshots"
    return outputs.leftovers(out, RUN_FILES) + [p for p in outputs.leftovers(snaps)
                                                if p.name.startswith(".epoch") and p.is_file()]


def _is_history(path: Path) -> bool:
    try:
        h = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(h, list) and all(isinstance(r, dict) and "epoch" in r for r in h)


def _run_files(out: Path) -> list[Path]:
    """The files of a zfbook run in ``out``; refuses a file with a run's name that a run did
    not write (a foreign ``last.pt``, say), so ``force`` never removes one."""
    files = [out / n for n in RUN_FILES if (out / n).exists()] + _snapshot_files(out)
    for f in files:
        ours = _is_history(f) if f.suffix == ".json" else _is_checkpoint(f)
        if not ours:
            raise ValueError(f"{f} was not written by a zfbook run, so --force will not remove it; "
                             "move it away or choose another --out")
    return files + _leftovers(out)


def _is_checkpoint(path: Path) -> bool:
    try:
        load_checkpoint(path, mmap=True)
        return True
    except CheckpointError:
        return False


def _describe(out: Path, files: list[Path]) -> str:
    names = [str(f.relative_to(out)) for f in files]
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    return shown or "nothing"


def check_run_folder(out, *, resume: bool = False, force: bool = False) -> list[Path]:
    """What a run may do with the folder ``out``; returns the old run's files that ``force``
    will remove (none unless ``force`` starts over). Nothing is changed here.

    * empty or missing: a new run;
    * ``resume`` with ``out/last.pt``: continue it (see :func:`check_same_run`);
    * otherwise not empty: refused, unless ``force``, which removes the old run's files
      (``last.pt``, ``history.json``, ``snapshots/epoch*.pt``) and keeps anything else.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; --out takes a folder")
    leftovers = _leftovers(out) if out.is_dir() else []
    entries = sorted(p for p in out.iterdir() if p not in leftovers and p.name != outputs.LOCK) \
        if out.is_dir() else []
    if not entries or (resume and (out / "last.pt").exists()):
        return leftovers  # a new or resumed run clears the temporary files of a killed one
    run = [out / n for n in RUN_FILES if (out / n).exists()] + _snapshot_files(out)
    if resume and not run:
        return leftovers  # only other files: nothing to resume, nothing of ours to overwrite
    if not force:
        what = _describe(out, run or entries)
        if resume:
            raise ValueError(f"--out {out} has no last.pt to resume from, but holds {what}; "
                             "add --force to start over (removes them) or choose another --out")
        kind = "a zfbook run" if run else "other files"
        raise ValueError(f"--out {out} is not empty: it holds {kind} ({what}); add --resume to "
                         "continue a run, --force to start over (removes only a run's files), "
                         "or choose a new folder")
    return _run_files(out)


def _hold(out: Path, command: str):
    """Create ``out`` and hold it (:class:`zfbook.outputs.FolderLock`) for the run: (the
    top-most folder this created, the lock)."""
    created = outputs.make_folder(out)
    try:
        return created, outputs.FolderLock(out, "train", command).acquire()
    except BaseException:
        outputs.remove_if_empty(out, created)
        raise


def _clear(out: Path, files: list[Path]) -> None:
    for f in files:
        f.unlink(missing_ok=True)
    if (out / "snapshots").is_dir() and not any((out / "snapshots").iterdir()):
        (out / "snapshots").rmdir()
    run = [f for f in files if f not in _leftovers(out) and not f.name.startswith(".")]
    if run:
        print(f"--force: removed the old run's files from {out}: {_describe(out, run)}", flush=True)


def _let_go(out: Path, created, lock) -> None:
    """After a failed or interrupted run: release the folder, and remove it if this run
    created it and wrote nothing."""
    if lock is not None:
        lock.release()
    outputs.remove_if_empty(out, created)


# ----------------------------------------------------------------------------- the same run?
#: Config fields that make a run what it is: ``resume`` refuses a checkpoint that differs in any
#: (``epochs`` may grow; device, workers and snapshots do not change the numbers).
SAME_RUN = ("preset", "dataset", "labels", "train_per_class", "seed", "data_seed", "batch_size", "lr", "momentum",
            "weight_decay", "conv1_weight_decay", "dropout", "renorm", "augment", "radius", "patience", "anneal")
#: what a checkpoint written before a field existed ran with
_BEFORE = {"train_per_class": None, "augment": True}


def _data_identity(train_set, cfg: "Config") -> dict:
    """What identifies a run's training data: its size, classes, labels, and for image files
    their paths relative to the root and their sizes in bytes (so a moved copy of the same
    data is the same data, and other images under the same names are not)."""
    labels = torch.as_tensor(train_set.labels).to(torch.int64).contiguous()
    h = hashlib.sha256(labels.numpy().tobytes())
    base = getattr(train_set, "base", None)
    samples = getattr(base, "samples", None) or getattr(base, "_samples", None)
    root = getattr(train_set, "root", None)
    if samples and root is not None:
        for path, _ in samples:
            try:
                rel = os.path.relpath(path, root)
            except ValueError:  # another drive (Windows)
                rel = str(path)
            try:
                size = os.stat(path).st_size
            except OSError:
                size = -1
            h.update(f"{rel}\0{size}\n".encode())
    return {"n": len(labels), "classes": list(getattr(train_set, "classes", [])), "sha256": h.hexdigest(),
            "root": str(Path(cfg.data_root).expanduser().resolve()) if cfg.data_root else ""}


def check_same_run(ckpt: dict, cfg: "Config", identity: dict | None = None) -> list[str]:
    """The differences between the run saved in ``ckpt`` and ``cfg`` (and, once the data is
    read, its ``identity``): one phrase each, empty if ``cfg`` continues the same run."""
    return _config_diffs(ckpt, cfg) + (_data_diffs(ckpt, identity) if identity is not None else [])


def _config_diffs(ckpt: dict, cfg: "Config") -> list[str]:
    saved = dict(ckpt.get("config", {}))
    saved.setdefault("data_seed", saved.get("seed"))
    saved.setdefault("preset", ckpt.get("preset"))
    for key, value in _BEFORE.items():
        saved.setdefault(key, value)
    now = _config_dict(cfg)
    diffs = []
    for key in SAME_RUN:
        if key in saved and saved[key] != now[key] and not (key == "data_seed" and cfg.dataset not in WORLDS):
            diffs.append(f"{key} {saved[key]!r} in the checkpoint, {now[key]!r} now")
    return diffs


def _resumed_config(cfg: "Config", ckpt: dict) -> "Config":
    """``cfg`` with the fields it left to the recipe (``cfg._from_recipe``: ``epochs``,
    ``lr``, ...) taken from the checkpoint's config, so that ``--resume`` continues the run
    as it was started: a run of ``--epochs 20`` resumed without ``--epochs`` stays 20 epochs
    long rather than growing to the recipe's; a given ``--epochs`` still grows it."""
    saved = ckpt.get("config") or {}
    kept = {k: saved[k] for k in sorted(cfg._from_recipe) if k in saved}
    return replace(cfg, **kept) if kept else cfg


def _data_diffs(ckpt: dict, identity: dict) -> list[str]:
    """The data: its classes, and its images (labels and file paths), wherever its root is."""
    have, diffs = ckpt.get("data"), []
    if have:
        if have.get("classes") != identity["classes"]:
            diffs.append(f"classes {_few(have.get('classes'))} in the checkpoint, {_few(identity['classes'])} now")
        elif have.get("sha256") != identity["sha256"]:
            where = (f" (data root {have.get('root')!r} then, {identity['root']!r} now)"
                     if have.get("root") != identity["root"] else "")
            diffs.append(f"the training images differ: {have.get('n')} then, {identity['n']} now{where}")
    return diffs


def _few(items) -> str:
    items = list(items or [])
    return "[" + ", ".join(map(str, items[:4])) + (f", … {len(items)} in all" if len(items) > 4 else "") + "]"


def _refuse_other_run(last: Path, diffs: list[str], force: bool) -> None:
    if not diffs:
        return
    text = "; ".join(diffs)
    if force:
        print(f"--force: continuing {last} although it is a different run: {text}", flush=True)
        return
    raise CheckpointError(f"cannot resume {last}: it is a different run ({text}); repeat the command "
                          "that started it with --resume, choose another --out, or add --force to "
                          "continue anyway")


def _world_diffs(ckpt: dict, cfg: "Config", size: int) -> list[str]:
    """A different number of processes: the global batch is kept, but each rank's share of
    it and the per-rank augmentation streams are not."""
    then = int(ckpt.get("world_size", 1))
    if then == size:
        return []
    return [f"world size {then} in the checkpoint, {size} now (the global batch {cfg.batch_size} would be "
            f"split {size} ways instead of {then}; resume with torchrun --nproc_per_node {then}"
            f"{' or without torchrun' if then == 1 else ''})"]


# ----------------------------------------------------------------------------- the checkpoint
def _save_epoch(out: Path, ckpt: dict, snapshot: bool) -> None:
    """The epoch's checkpoint, its snapshot and the history, each written atomically."""
    save_atomic(ckpt, out / "last.pt")
    if snapshot:
        save_atomic({k: ckpt[k] for k in ("format", "preset", "num_classes", "classes", "model",
                                          "mean", "epoch", "history", "config")},
                    out / "snapshots" / f"epoch{ckpt['epoch']}.pt")
    write_text_atomic(out / "history.json", json.dumps(ckpt["history"], indent=1))


def _model_state(model) -> dict:
    return {k: v.detach().to("cpu", memory_format=torch.contiguous_format).clone()
            for k, v in model.state_dict().items()}


def _config_dict(cfg: Config) -> dict:
    d = asdict(cfg)
    d["snapshots"] = list(d["snapshots"])
    d["anneal"] = list(d["anneal"])
    return d


def _rng_state(gen: torch.Generator, device) -> dict:
    state = {"torch": torch.get_rng_state(), "data": gen.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, gen: torch.Generator, device) -> None:
    torch.set_rng_state(state["torch"])
    gen.set_state(state["data"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])
