"""``python -m zfbook evaluate``: top-1/top-5 of a checkpoint, centre crop and 10 crops."""
from __future__ import annotations

from pathlib import Path

from ..checkpoint import load_checkpoint, model_from_checkpoint
from ..train import DEVICES, evaluate, real_split, resolve_device

NAME = "evaluate"
HELP = "top-1/top-5 of a checkpoint, centre crop and 10 crops"


def add_arguments(e) -> None:
    e.add_argument("--checkpoint", required=True, type=Path)
    e.add_argument("--split", default="test", choices=("train", "val", "test"))
    e.add_argument("--device", default="auto", help=f"one of: {', '.join(DEVICES)}")
    e.add_argument("--data-root", default="", help="for a run on a real dataset: its folder "
                   "(default: the run's own); its validation split stands in for test")


def eval_set(ckpt, split, data_root=""):
    """The split a checkpoint is evaluated on, and its name: the embedded dataset's own
    splits, or, for a run on a real dataset, that dataset read from ``data_root`` (default:
    the run's own root), whose validation split stands in for ``test`` (``train.real_split``)."""
    cfg = ckpt.get("config", {})
    dataset = cfg.get("dataset", "embedded")
    from ..data.embedded import WORLDS, embedded
    if dataset in WORLDS:
        return embedded(split, WORLDS[dataset], cfg.get("data_seed", cfg.get("seed", 0))), split
    data = real_split(dataset, data_root or cfg.get("data_root", ""), split, ckpt["preset"])
    return data, f"{data.name} {data.split}"


def evaluate_checkpoint(ckpt, source, split, device, data_root=""):
    """(centre-crop result, 10-crop result, split name) of a loaded checkpoint dict."""
    model = model_from_checkpoint(ckpt, source)
    data, name = eval_set(ckpt, split, data_root)
    dev = resolve_device(device)
    images, labels = (data.images, data.labels) if hasattr(data, "images") else (data, None)
    centre = evaluate(model, images, labels, model.preprocess, device=dev)
    ten = evaluate(model, images, labels, model.preprocess, ten_crop=True, device=dev)
    return centre, ten, name


def run(args) -> int:
    ckpt = load_checkpoint(args.checkpoint)
    centre, ten, split = evaluate_checkpoint(ckpt, str(args.checkpoint), args.split, args.device, args.data_root)
    print(f"{args.checkpoint} ({ckpt['preset']}, epoch {ckpt.get('epoch', '?')}) on the {split} split:")
    print(f"  centre crop: top-1 {centre['top1']:.2f}%  top-5 {centre['top5']:.2f}%")
    print(f"  10 crops:    top-1 {ten['top1']:.2f}%  top-5 {ten['top5']:.2f}%")
    return 0
