"""``python -m zfbook occlude``: Fig. 7 for anyone's model and one image.

A grey square (the mean: 0 after the model's own normalisation) slides over the image
(:func:`zfbook.occlusion.occlusion_maps`); the three maps of Fig. 7 — (b) the total activity
of one feature map, (d) P(target class), (e) the most probable class — and the drop of
P(target) over the image are written as PNGs, the numbers as ``maps.json``.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..outputs import RULE, OutputFolder, Owned, head
from .visualize import interrupted  # noqa: F401  (Ctrl-C's line)

NAME = "occlude"
HELP = "Fig. 7 for any model and image: occlusion maps as PNGs and JSON"


def add_arguments(o) -> None:
    o.add_argument("--model", required=True,
                   help="a shipped model (zfnet-mini, alexnet-mini), a checkpoint path, or torchvision:NAME")
    o.add_argument("--weights", default=None,
                   help="torchvision models only: DEFAULT or a weights name; without it the model is untrained")
    o.add_argument("--image", required=True, type=Path, help="one JPEG/PNG file")
    o.add_argument("--target", default=None,
                   help="class number or name (default: the class the model predicts for the image)")
    o.add_argument("--patch", type=int, default=None, help="side of the square in pixels (default: crop/7, 32 at 224)")
    o.add_argument("--stride", type=int, default=None, help="step between squares (default: patch/4)")
    o.add_argument("--layer", default=None,
                   help="layer of map (b) (default: conv5 for ours, the last rectified map for torchvision)")
    o.add_argument("--feature", type=int, default=None,
                   help="feature map of --layer for (b) (default: the strongest on the unoccluded image)")
    o.add_argument("--method", default="incremental", help="incremental or batched (same maps)")
    o.add_argument("--batch-size", type=int, default=64)
    o.add_argument("--out", required=True, type=Path,
                   help="output folder: activity.png, p_target.png, top_class.png, overlay.png, maps.json")
    o.add_argument("--force", action="store_true", help="replace an earlier occlude output in OUT (its four "
                   "PNGs and maps.json; nothing else)")
    o.add_argument("--no-progress", action="store_true")
    o.epilog = RULE


PNGS = ("activity.png", "p_target.png", "top_class.png", "overlay.png")
MARK = "zfbook occlude"   # in every PNG's metadata


def _ours(path: Path, folder: Path) -> bool:
    """Whether ``path`` (one of :data:`OWN`'s names) is a file ``occlude`` wrote."""
    if path.name == "maps.json":
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            return False
        return isinstance(rec, dict) and {"p_target", "top_class", "patch", "stride", "target"} <= set(rec)
    png = head(path)
    return png.startswith(b"\x89PNG") and (MARK.encode() in png or  # an output made before the mark:
                                             b"Matplotlib" in png and _ours(folder / "maps.json", folder))


#: what ``occlude`` writes into ``--out``, and how it knows its own files (``--force``)
OWN = Owned("occlude", PNGS + ("maps.json",), _ours)


def _target(text, src, logits) -> int:
    n = int(logits.numel())
    if text is None:
        return int(logits.argmax())
    if text.lstrip("-").isdigit():
        t = int(text)
        if not 0 <= t < n:
            raise ValueError(f"--target {t} is out of range; valid classes are 0-{n - 1}")
        return t
    names = [str(c) for c in (src.classes or [])]
    if text in names:
        return names.index(text)
    hint = f": {', '.join(names)}" if 0 < len(names) <= 30 else (
        f" (the model's class names, e.g. {', '.join(names[:5])}, ...)" if names else
        " (this model has no class names: give a number)")
    raise ValueError(f"unknown --target {text!r}; valid targets are 0-{n - 1} or a class name{hint}")


def run(args) -> int:
    from ..occlusion import METHODS

    if args.method not in METHODS:
        raise ValueError(f"unknown --method {args.method!r}; methods are: {', '.join(METHODS)}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    if not args.image.is_file():
        raise ValueError(f"--image {args.image} is not a file; give one JPEG/PNG image")
    args.output = OutputFolder(args.out, OWN, force=args.force, command=args.command_line,
                               inputs=[("--image", args.image), ("--model", args.model)])
    with args.output as folder:
        return _occlude(args, folder)


def _occlude(args, folder) -> int:
    """The sweep and its figures, published into ``folder`` (an
    :class:`~zfbook.outputs.OutputFolder`)."""
    import torch
    from ..occlusion import occlusion_maps
    from ..plot import fig7_maps as figs
    from .. import sources

    src = sources.load_model(args.model, args.weights)
    if not src.chain:
        raise ValueError(f"{src.name}'s forward is not its children in order (a flatten aside), so "
                         f"occlusion cannot sweep it; models that are: zfbook checkpoints, "
                         f"torchvision AlexNet, VGG, ResNet, MobileNet, EfficientNet, ...")
    x = src.transform(sources.open_image(args.image))
    size = min(x.shape[-2:])
    patch = args.patch if args.patch is not None else max(1, round(size / 7))
    stride = args.stride if args.stride is not None else max(1, patch // 4)
    layer = args.layer or src.probe
    with torch.no_grad():
        logits = src.model(x[None])[0]
    target = _target(args.target, src, logits)
    maps = occlusion_maps(src.model, x, target, patch, stride, layer=layer, feature=args.feature,
                          method=args.method, batch=args.batch_size, progress=not args.no_progress)
    classes = src.classes or [str(c) for c in range(int(logits.numel()))]
    name = src.class_name(target)
    image = src.transform.display(x)
    record = {
        "command": args.command_line, "model": src.name, "image": str(args.image),
        "target": target, "target_name": name, "patch": maps.patch, "stride": maps.stride,
        "method": args.method, "layer": maps.layer, "feature": maps.feature,
        "rows": maps.positions[:, 0, 0].tolist(), "cols": maps.positions[0, :, 1].tolist(),
        "unoccluded": {"activity": maps.activity0, "p_target": maps.p_target0,
                       "top_class": maps.top_class0, "top_class_name": src.class_name(maps.top_class0)},
        "activity": None if maps.activity is None else maps.activity.tolist(), "p_target": maps.p_target.tolist(),
        "top_class": maps.top_class.tolist(),
        "classes_shown": {str(c): src.class_name(c) for c in sorted(set(maps.top_class.flatten().tolist()))},
    }
    tmp = folder.staging()
    panels = [] if maps.activity is None else [("activity.png", figs.activity_map(maps, image))]
    for file, fig in panels + [("p_target.png", figs.probability_map(maps, image, name)),
                               ("top_class.png", figs.top_class_map(maps, image, classes)),
                               ("overlay.png", figs.overlay(maps, image, name))]:
        fig.savefig(tmp / file, dpi=100, metadata={"Source": MARK})
    (tmp / "maps.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    folder.publish(last="maps.json")
    low = float(maps.p_target.min())
    print(f"{src.name} on {args.image.name}: P({name}) {maps.p_target0:.3f} unoccluded, down to "
          f"{low:.3f} with a {patch}-px square; {maps.positions.shape[0]}×{maps.positions.shape[1]} "
          f"placements; wrote {args.out}/ (activity.png, p_target.png, top_class.png, overlay.png, maps.json)")
    return 0
