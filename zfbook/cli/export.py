"""``python -m zfbook export``: a run's weights as float16 into ``data/``, recorded in the manifest.

``--name`` is a file name in ``data/`` that :func:`zfbook.pretrained` reads back
(``zfnet-mini.pt``, ``zfnet-mini-epoch5.pt``: :data:`zfbook.checkpoint.SHIPPED_NAME`), never
a path, and an existing file is replaced only with ``--force``. The float16 model is
evaluated first (weights that are not finite, or beyond float16's range, are refused); only
then is the file written and renamed into place, and after it its manifest entry, each
atomically: the manifest never lists a file that is not there, and if it cannot be written
the replaced file is put back. Ctrl-C waits until both are written.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..checkpoint import (FORMAT, data_dir, deferred_interrupts, load_checkpoint, manifest,
                          parse_shipped_name, save_atomic, sha256, write_text_atomic)
from . import relative_command
from .evaluate import evaluate_checkpoint

NAME = "export"
HELP = "write a run's weights as float16 into data/ and record it in the manifest"
MANIFEST = "MANIFEST.json"
MAX_NAME = 200  # characters of --name (a file name may have 255 bytes; the staged copy adds a few)


def add_arguments(x) -> None:
    x.add_argument("--checkpoint", required=True, type=Path, help="a run's last.pt or snapshots/epochE.pt")
    x.add_argument("--name", required=True, help="file name in data/, e.g. zfnet-mini.pt (not a path)")
    x.add_argument("--force", action="store_true", help="replace a file of that name in data/ (and its manifest entry)")
    x.add_argument("--wall", type=float, default=None, help="wall time of the run in seconds, if measured outside")
    x.add_argument("--note", default="", help="a remark recorded in the manifest (e.g. how the run was resumed)")
    x.add_argument("--data-root", default="", help="for a run on a real dataset: its folder (default: the run's own)")
    from ..outputs import RULE
    x.epilog = RULE


def check_name(name: str) -> str:
    """``name`` if it is a file name that :func:`zfbook.pretrained` reads back
    (:data:`zfbook.checkpoint.SHIPPED_NAME`: ``MODEL.pt``, or ``MODEL-epochE.pt`` for a
    snapshot), never a path; a one-line ValueError otherwise."""
    if parse_shipped_name(name) is None or len(name) > MAX_NAME:
        raise ValueError("--name takes a file name in data/ (not a path) that zfbook.pretrained() reads "
                         "back: MODEL.pt, or MODEL-epochE.pt for the snapshot after epoch E, MODEL made "
                         f"of letters, digits, '_' and '-' (e.g. zfnet-mini.pt, zfnet-mini-epoch5.pt), "
                         f"at most {MAX_NAME} characters; got {name!r}")
    return name


def run(args) -> int:
    """float16 weights + mean + history; accuracy measured on the float16 weights themselves,
    before anything is written."""
    name = check_name(args.name)
    if args.wall is not None and not (args.wall >= 0 and args.wall != float("inf")):
        raise ValueError(f"--wall must be a finite number of seconds ≥ 0, got {args.wall}")
    folder = data_dir()
    path = folder / name
    entries = manifest()  # refuses a damaged manifest before any work
    if (path.exists() or name in entries) and not args.force:
        listed = " (listed in MANIFEST.json)" if name in entries else ""
        raise ValueError(f"{path} already exists{listed}; pass --force to replace it, or choose another --name")
    ckpt = load_checkpoint(args.checkpoint)
    small = {k: ckpt[k] for k in ("format", "preset", "num_classes", "classes", "mean", "epoch", "history", "config")
             if k in ckpt}
    half_max = 65504.0  # the largest float16
    over = [k for k, v in ckpt["model"].items()
            if v.is_floating_point() and v.numel() and float(v.abs().max()) > half_max]
    if over:
        raise ValueError(f"{args.checkpoint}: weights beyond float16's range (|w| > {half_max:g}) in "
                         f"{', '.join(over[:4])}; export writes float16 weights, which would be inf")
    small["model"] = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    # evaluated before anything is written (weights that do not fit are refused first)
    centre, ten, split = evaluate_checkpoint(small, str(args.checkpoint), "test", "cpu", args.data_root)
    cfg = ckpt.get("config", {})
    wall = args.wall if args.wall is not None else sum(h.get("seconds", 0.0) for h in ckpt.get("history", []))
    staged = folder / f".{name}.export{os.getpid()}"
    with deferred_interrupts():  # Ctrl-C waits until the file and its manifest entry are written
        try:
            save_atomic(small, staged)
            entry = {"command": relative_command(cfg.get("command", "")), "preset": ckpt["preset"], "seed": cfg.get("seed"),
                     "epochs": ckpt.get("epoch"), "test_top1_centre": round(centre["top1"], 2),
                     "test_top5_centre": round(centre["top5"], 2), "test_top1_10crop": round(ten["top1"], 2),
                     "test_top5_10crop": round(ten["top5"], 2), "wall_seconds": round(wall, 1),
                     "sha256": sha256(staged), "bytes": staged.stat().st_size, "format": FORMAT}
            if split != "test":  # a real dataset: its validation split stood in for a test split
                entry["evaluated_on"] = split
            if args.note:
                entry["note"] = args.note
            entries = manifest()
            entries[name] = entry
            _publish(staged, path, lambda: write_text_atomic(
                folder / MANIFEST, json.dumps(dict(sorted(entries.items())), indent=2) + "\n"))
        finally:
            staged.unlink(missing_ok=True)
        args.written = path
    print(f"wrote {path} ({entry['bytes'] / 1e6:.2f} MB): test top-1 {entry['test_top1_centre']}% centre, "
          f"{entry['test_top1_10crop']}% 10 crops")
    return 0


def _publish(staged: Path, path: Path, write_manifest) -> None:
    """Rename ``staged`` to ``path``, then write the manifest (``write_manifest()``): the
    manifest never lists a file that is not in place. If either step fails, ``path`` is
    what it was before (the replaced file, kept as a hard link until then, or nothing) and
    the manifest is unchanged."""
    backup = path.with_name(f".{path.name}.replaced{os.getpid()}")
    had = path.exists()
    try:
        if had:
            try:
                os.link(path, backup)
            except OSError:  # a file system without hard links
                shutil.copy2(path, backup)
        try:
            os.replace(staged, path)
        except OSError as e:
            raise OSError(e.errno, f"cannot write {path}: {e.strerror or e}; data/ and its manifest "
                                   "are unchanged") from None
        try:
            write_manifest()
        except BaseException:
            if had:
                os.replace(backup, path)
            else:
                path.unlink(missing_ok=True)
            raise
    finally:
        backup.unlink(missing_ok=True)


def interrupted(args, e) -> str:
    written = getattr(args, "written", None)
    if written:
        return f"interrupted after {written} and its manifest entry were written"
    return "interrupted; nothing was written to data/"
