"""Checkpoints: atomic saving, safe loading (``weights_only=True``), and the shipped weights.

A training checkpoint is a plain dict of tensors and Python primitives, so loading it never
unpickles arbitrary objects. The shipped files in ``data/`` are the same format with float16
weights and no optimiser state; ``data/MANIFEST.json`` records how each was made.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from .data.preprocess import Preprocess
from .models import ConvNet, PRESETS, build

__all__ = ["CheckpointError", "FORMAT", "save_atomic", "load_checkpoint", "model_from_checkpoint",
           "load_state", "pretrained", "data_dir", "manifest", "sha256"]

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


def save_atomic(obj, path) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load a zfbook checkpoint dict safely; a one-line :class:`CheckpointError` otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, random bytes, a pickle with foreign objects ...
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"cannot read checkpoint {path}: {first}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a zfbook checkpoint (expected format {FORMAT!r})")
    for key in ("preset", "num_classes", "model", "mean"):
        if key not in ckpt:
            raise CheckpointError(f"{path} is damaged: it has no {key!r} entry")
    return ckpt


def load_state(model: ConvNet, ckpt: dict, source="checkpoint") -> None:
    """Load ``ckpt``'s weights into ``model``, with a clear error when the architectures differ."""
    want = getattr(model, "preset", None)
    have = ckpt["preset"]
    if want is not None and (want.name != have or model.num_classes != ckpt["num_classes"]):
        raise CheckpointError(
            f"{source} holds a {have!r} with {ckpt['num_classes']} classes, but the model is a "
            f"{want.name!r} with {model.num_classes} classes")
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"{source} does not fit the model: {str(e).splitlines()[0]}") from None


def model_from_checkpoint(ckpt: dict, source="checkpoint") -> ConvNet:
    """Rebuild the model a checkpoint was trained as, in eval mode, with ``.preprocess``,
    ``.classes``, ``.history`` attached."""
    if ckpt["preset"] not in PRESETS:
        raise CheckpointError(f"{source} names an unknown preset {ckpt['preset']!r}; "
                              f"valid presets are: {', '.join(PRESETS)}")
    model = build(ckpt["preset"], ckpt["num_classes"])
    load_state(model, ckpt, source)
    model.eval()
    model.preprocess = Preprocess(ckpt["mean"].float(), model.preset.crop, model.preset.input_scale)
    model.classes = list(ckpt.get("classes") or range(ckpt["num_classes"]))
    model.history = ckpt.get("history", [])
    return model


def manifest() -> dict:
    """``data/MANIFEST.json``: file name → command, seed, epochs, accuracy, wall time, sha256."""
    path = data_dir() / "MANIFEST.json"
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def pretrained(name: str = "zfnet-mini", epoch: int | None = None) -> ConvNet:
    """A shipped checkpoint from ``data/``: ``zfnet-mini`` or ``alexnet-mini``; with ``epoch``,
    the zfnet-mini snapshot taken after that epoch (Fig. 4)."""
    entries = manifest()
    file = f"{name}.pt" if epoch is None else f"{name}-epoch{epoch}.pt"
    if epoch is not None and entries.get(f"{name}.pt", {}).get("epochs") == epoch:
        file = f"{name}.pt"  # the last snapshot is the final model itself
    if file not in entries:
        names = sorted({k.split("-epoch")[0].removesuffix(".pt") for k in entries if k.endswith(".pt")})
        epochs = sorted(int(k.split("-epoch")[1][:-3]) for k in entries if k.startswith(f"{name}-epoch"))
        if f"{name}.pt" in entries:
            epochs = sorted(set(epochs) | {entries[f"{name}.pt"]["epochs"]})  # the final is also a snapshot
        if epoch is not None and name in names:
            raise ValueError(f"no snapshot of {name!r} at epoch {epoch}; snapshots: {epochs}")
        raise ValueError(f"unknown pretrained model {name!r}; shipped models are: {', '.join(names) or 'none'}")
    path = data_dir() / file
    model = model_from_checkpoint(load_checkpoint(path), source=str(path))
    model.meta = dict(entries[file], file=file)
    return model
