"""``python -m zfbook export``: a run's weights as float16 into ``data/``, recorded in the manifest."""
from __future__ import annotations

import json
from pathlib import Path

from ..checkpoint import FORMAT, data_dir, load_checkpoint, save_atomic, sha256
from .evaluate import evaluate_checkpoint

NAME = "export"
HELP = "write a run's weights as float16 into data/ and record it in the manifest"


def add_arguments(x) -> None:
    x.add_argument("--checkpoint", required=True, type=Path, help="a run's last.pt or snapshots/epochE.pt")
    x.add_argument("--name", required=True, help="file name in data/, e.g. zfnet-mini.pt")
    x.add_argument("--wall", type=float, default=None, help="wall time of the run in seconds, if measured outside")
    x.add_argument("--note", default="", help="a remark recorded in the manifest (e.g. how the run was resumed)")
    x.add_argument("--data-root", default="", help="for a run on a real dataset: its folder (default: the run's own)")


def run(args) -> int:
    """float16 weights + mean + history; accuracy measured on the float16 weights themselves."""
    ckpt = load_checkpoint(args.checkpoint)
    small = {k: ckpt[k] for k in ("format", "preset", "num_classes", "classes", "mean", "epoch", "history", "config")}
    small["model"] = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    path = data_dir() / args.name
    save_atomic(small, path)
    centre, ten, split = evaluate_checkpoint(load_checkpoint(path), str(path), "test", "cpu", args.data_root)
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
    return 0
