"""The command line: ``python -m zfbook train|evaluate|export``."""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from . import models
from .checkpoint import (CheckpointError, data_dir, load_checkpoint, model_from_checkpoint, save_atomic,
                         sha256, FORMAT)
from .train import DEVICES, DATASETS, SNAPSHOTS, Config, evaluate, real_split, resolve_device, train


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m zfbook", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train a preset with the paper's recipe (Section 3)")
    t.add_argument("--preset", default="zfnet-mini", help=f"one of: {', '.join(models.PRESETS)}")
    t.add_argument("--device", default="auto", help=f"one of: {', '.join(DEVICES)} (or cuda:N)")
    t.add_argument("--out", required=True, type=Path, help="run folder: last.pt, history.json, snapshots/")
    t.add_argument("--resume", action="store_true", help="continue exactly from OUT/last.pt")
    t.add_argument("--dataset", default="embedded", help=f"one of: {', '.join(DATASETS)}")
    t.add_argument("--data-root", default="", help="a real dataset's folder (see zfbook.data.load)")
    t.add_argument("--download", action="store_true", help="download a real dataset where torchvision can")
    t.add_argument("--workers", type=int, default=4, help="DataLoader workers for real datasets")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--epochs", type=int, default=None, help="default: the preset's recipe")
    t.add_argument("--batch-size", type=int, default=None, help="default: the preset's recipe")
    t.add_argument("--lr", type=float, default=None, help="default: the preset's recipe")
    t.add_argument("--anneal", default=None, help="epochs after which the learning rate is ×0.1, "
                   "e.g. 12 or 12,20 (default: the preset's recipe; 'none' for none)")
    t.add_argument("--weight-decay", type=float, default=5e-4)
    t.add_argument("--no-renorm", action="store_true", help="switch filter renormalisation off (Fig. 6a)")
    t.add_argument("--snapshots", default=",".join(map(str, SNAPSHOTS)),
                   help="epochs after which to keep a snapshot of the weights (Fig. 4)")
    t.add_argument("--no-progress", action="store_true")
    e = sub.add_parser("evaluate", help="top-1/top-5 of a checkpoint, centre crop and 10 crops")
    e.add_argument("--checkpoint", required=True, type=Path)
    e.add_argument("--split", default="test", choices=("train", "val", "test"))
    e.add_argument("--device", default="auto", help=f"one of: {', '.join(DEVICES)}")
    e.add_argument("--data-root", default="", help="for a run on a real dataset: its folder "
                   "(default: the run's own); its validation split stands in for test")
    x = sub.add_parser("export", help="write a run's weights as float16 into data/ and record it in the manifest")
    x.add_argument("--checkpoint", required=True, type=Path, help="a run's last.pt or snapshots/epochE.pt")
    x.add_argument("--name", required=True, help="file name in data/, e.g. zfnet-mini.pt")
    x.add_argument("--wall", type=float, default=None, help="wall time of the run in seconds, if measured outside")
    x.add_argument("--note", default="", help="a remark recorded in the manifest (e.g. how the run was resumed)")
    x.add_argument("--data-root", default="", help="for a run on a real dataset: its folder (default: the run's own)")
    return p


def _epochs(text, flag):
    """``--snapshots`` / ``--anneal``: epochs separated by commas."""
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        also = " or 'none'" if flag == "--anneal" else ""
        raise ValueError(f"{flag} takes epochs separated by commas (e.g. 12,20){also}, got {text!r}")


def _anneal(text):
    if text is None:  # the preset's recipe
        return None
    return () if text.strip().lower() == "none" else _epochs(text, "--anneal")


def _eval_set(ckpt, split, data_root=""):
    """The split a checkpoint is evaluated on, and its name: the embedded dataset's own
    splits, or, for a run on a real dataset, that dataset read from ``data_root`` (default:
    the run's own root), whose validation split stands in for ``test`` (``train.real_split``)."""
    cfg = ckpt.get("config", {})
    dataset = cfg.get("dataset", "embedded")
    if dataset == "embedded":
        from .data.embedded import embedded
        return embedded(split, seed=cfg.get("seed", 0)), split
    data = real_split(dataset, data_root or cfg.get("data_root", ""), split, ckpt["preset"])
    return data, f"{data.name} {data.split}"


def _evaluate(ckpt, source, split, device, data_root=""):
    model = model_from_checkpoint(ckpt, source)
    data, name = _eval_set(ckpt, split, data_root)
    dev = resolve_device(device)
    images, labels = (data.images, data.labels) if hasattr(data, "images") else (data, None)
    centre = evaluate(model, images, labels, model.preprocess, device=dev)
    ten = evaluate(model, images, labels, model.preprocess, ten_crop=True, device=dev)
    return centre, ten, name


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.cmd == "train":
            cfg = Config(preset=args.preset, epochs=args.epochs, device=args.device, dataset=args.dataset,
                         seed=args.seed, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                         data_root=args.data_root, download=args.download, workers=args.workers,
                         renorm=not args.no_renorm, anneal=_anneal(args.anneal),
                         snapshots=_epochs(args.snapshots, "--snapshots"),
                         command="python -m zfbook " + " ".join(map(shlex.quote, sys.argv[1:] if argv is None else argv)))
            history = train(cfg, args.out, resume=args.resume, progress=not args.no_progress)
            if history:
                h = history[-1]
                print(f"done: epoch {h['epoch']}, val top-1 {h['val_top1']:.2f}%, top-5 {h['val_top5']:.2f}%; "
                      f"checkpoint {args.out / 'last.pt'}")
        elif args.cmd == "evaluate":
            ckpt = load_checkpoint(args.checkpoint)
            centre, ten, split = _evaluate(ckpt, str(args.checkpoint), args.split, args.device, args.data_root)
            print(f"{args.checkpoint} ({ckpt['preset']}, epoch {ckpt.get('epoch', '?')}) on the {split} split:")
            print(f"  centre crop: top-1 {centre['top1']:.2f}%  top-5 {centre['top5']:.2f}%")
            print(f"  10 crops:    top-1 {ten['top1']:.2f}%  top-5 {ten['top5']:.2f}%")
        elif args.cmd == "export":
            _export(args)
    except (CheckpointError, ValueError, RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def _export(args):
    """float16 weights + mean + history; accuracy measured on the float16 weights themselves."""
    ckpt = load_checkpoint(args.checkpoint)
    small = {k: ckpt[k] for k in ("format", "preset", "num_classes", "classes", "mean", "epoch", "history", "config")}
    small["model"] = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    path = data_dir() / args.name
    save_atomic(small, path)
    centre, ten, split = _evaluate(load_checkpoint(path), str(path), "test", "cpu", args.data_root)
    cfg = ckpt.get("config", {})
    wall = args.wall if args.wall is not None else sum(h["seconds"] for h in ckpt["history"])
    entry = {"command": cfg.get("command", ""), "preset": ckpt["preset"], "seed": cfg.get("seed"),
             "epochs": ckpt["epoch"], "test_top1_centre": round(centre["top1"], 2),
             "test_top5_centre": round(centre["top5"], 2), "test_top1_10crop": round(ten["top1"], 2),
             "test_top5_10crop": round(ten["top5"], 2), "wall_seconds": round(wall, 1),
             "sha256": sha256(path), "bytes": path.stat().st_size, "format": FORMAT}
    if split != "test":  # a real dataset: its validation split stood in for a test split
        entry["evaluated_on"] = split
    if args.note:
        entry["note"] = args.note
    mpath = data_dir() / "MANIFEST.json"
    entries = json.loads(mpath.read_text()) if mpath.exists() else {}
    entries[args.name] = entry
    tmp = mpath.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(dict(sorted(entries.items())), indent=2) + "\n")
    tmp.replace(mpath)
    print(f"wrote {path} ({entry['bytes'] / 1e6:.2f} MB): test top-1 {entry['test_top1_centre']}% centre, "
          f"{entry['test_top1_10crop']}% 10 crops")


if __name__ == "__main__":
    sys.exit(main())
