"""``python -m zfbook visualize``: Fig. 2 for anyone's model and images.

For every layer, the ``k`` strongest activations of each chosen feature map over a folder of
images (:func:`zfbook.topk.top_activations`; split over the processes under ``torchrun``,
:func:`zfbook.distributed.top_activations`), each projected to pixels by the deconvnet
(:func:`zfbook.deconv.project`) beside the image patch it comes from
(:func:`zfbook.plot.fig2`), 16 maps to a PNG, and one ``index.html`` linking them all.
"""
from __future__ import annotations

import html
import json
from pathlib import Path

import torch

from ..outputs import RULE, OutputFolder, Owned, head

NAME = "visualize"
HELP = "Fig. 2 for any model and images: top-k projections beside their patches, as PNGs + index.html"
PER_PNG = 16   # maps per PNG (a 4 × 4 grid of Fig. 2 panels)
K_MAX = 64     # activations per map: a PNG's 16 maps then hold 1,024 projections


def add_arguments(v) -> None:
    v.add_argument("--model", required=True,
                   help="a shipped model (zfnet-mini, alexnet-mini), a checkpoint path, or torchvision:NAME")
    v.add_argument("--weights", default=None,
                   help="torchvision models only: DEFAULT or a weights name (downloaded when online); "
                        "without it the model is untrained")
    v.add_argument("--images", default="embedded",
                   help="a folder of JPEG/PNG files, or embedded[:SPLIT] (the embedded dataset; default: test)")
    v.add_argument("--layers", default=None,
                   help="layers separated by commas (default: the rectified conv layers, conv1…conv5 for ours)")
    v.add_argument("--maps", default="0-15", help="feature maps, e.g. 0-15 or 0-7,32 or all (default 0-15)")
    v.add_argument("--k", type=int, default=9, help=f"activations per map (9 in the paper; at most {K_MAX} "
                   "and the number of images)")
    v.add_argument("--limit", type=int, default=None, help="use only the first N images")
    v.add_argument("--batch-size", type=int, default=64)
    v.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto")
    v.add_argument("--out", required=True, type=Path, help="output folder (index.html, LAYER/*.png, topk.pt)")
    v.add_argument("--force", action="store_true", help="replace an earlier visualize output in OUT (its "
                   "index.html, images.json, topk.pt, LAYER/maps_*.png; nothing else)")
    v.epilog = RULE
    v.add_argument("--no-progress", action="store_true")


def parse_maps(text: str, n: int | None = None) -> list[int] | None:
    """``0-15``, ``0-7,32,40-47`` or ``all`` (None) → sorted map numbers; with ``n`` (the
    layer's number of maps), numbers beyond it are refused."""
    text = text.strip()
    if text.lower() == "all":
        return None if n is None else list(range(n))
    out = set()
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            a, sep, b = part.partition("-")
            lo = int(a)
            hi = int(b) if sep else lo
            if lo < 0 or hi < lo:
                raise ValueError
            out.update(range(lo, hi + 1))
    except ValueError:
        raise ValueError(f"--maps takes map numbers and ranges separated by commas "
                         f"(e.g. 0-15 or 0-7,32) or 'all', got {text!r}") from None
    if not out:
        raise ValueError(f"--maps names no map: {text!r}")
    return sorted(out)


def _ours(path: Path, folder: Path) -> bool:
    """Whether ``path`` (one of :data:`OWN`'s names) is a file ``visualize`` wrote."""
    if path.name == "index.html":
        return b"<title>zfbook visualize" in head(path)
    if path.name == "images.json":
        try:
            names = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            return False
        return isinstance(names, list) and all(isinstance(n, str) for n in names)
    if path.name == "topk.pt":
        from ..topk import load
        try:
            load(path)  # weights_only: reading a foreign file runs no code
            return True
        except Exception:
            return False
    png = head(path)
    return png.startswith(b"\x89PNG") and (MARK.encode() in png or  # an output made before the mark:
                                             b"Matplotlib" in png and _ours(folder / "index.html", folder))


#: what ``visualize`` writes into ``--out``, and how it knows its own files (``--force``)
OWN = Owned("visualize", ("index.html", "images.json", "topk.pt", "*/maps_*.png"), _ours)
MARK = "zfbook visualize"   # in every PNG's metadata


def _embedded(spec: str) -> bool:
    return spec == "embedded" or spec.startswith("embedded:")


def embedded_images(spec: str, source, limit: int | None = None):
    """``embedded[:SPLIT]``: the embedded dataset's split (its first ``limit`` images),
    preprocessed for ``source``."""
    from ..data.embedded import SPLITS, embedded
    split = spec.partition(":")[2] or "test"
    if split not in SPLITS["main"]:  # SPLITS: each family's splits
        raise ValueError(f"unknown embedded split {split!r}; splits are: {', '.join(SPLITS['main'])}")
    raw = embedded(split).images[:limit]
    if hasattr(source.transform, "preprocess"):  # ours: the checkpoint's own preprocessing
        images = source.transform.preprocess.center(raw)
    else:
        from torchvision.transforms.v2.functional import to_pil_image
        images = torch.stack([source.transform(to_pil_image(x)) for x in raw])
    return images, [f"embedded {split} #{i}" for i in range(len(images))]


def _layer_sizes(model, layers, image) -> dict[str, int]:
    """Each layer's number of maps (one forward pass of one image; refuses unknown layers)."""
    from ..models import activations
    acts = activations(model, image[None], layers)
    return {n: int(a.shape[1]) for n, a in acts.items()}


def _index_html(model_name, images_desc, n_images, k, pages, command) -> str:
    rows = []
    for layer, files in pages.items():
        links = "\n".join(f'<figure><a href="{html.escape(f)}"><img src="{html.escape(f)}" '
                          f'alt="{html.escape(layer)}: top-{k} projections and patches, {html.escape(cap)}" '
                          f'loading="lazy"></a><figcaption>{html.escape(cap)}</figcaption></figure>'
                          for f, cap in files)
        rows.append(f"<h2>{html.escape(layer)}</h2>\n{links}")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>zfbook visualize: {html.escape(model_name)}</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}}
img{{max-width:100%;border:1px solid #ccc}} figure{{margin:1em 0}} code{{background:#eee}}</style></head>
<body><h1>Top-{k} activations of {html.escape(model_name)}</h1>
<p>Over {n_images} images ({html.escape(images_desc)}). For every feature map: its {k} strongest
activations, each projected to pixels by the deconvnet (left), beside the image patches they see
(right), as in Zeiler &amp; Fergus (ECCV 2014), Fig. 2.</p>
<p>Command: <code>{html.escape(command)}</code></p>
{chr(10).join(rows)}
</body></html>
"""


def _visualize(args, w, wanted, device, folder) -> dict:
    """The search and the drawing, into ``folder`` (an :class:`~zfbook.outputs.OutputFolder`);
    returns the PNGs drawn, by layer (on rank 0)."""
    from tqdm.auto import tqdm
    from .. import deconv, distributed, plot, sources, topk
    progress = not args.no_progress and w.main
    src = sources.load_model(args.model, args.weights)
    layers = [s.strip() for s in args.layers.split(",") if s.strip()] if args.layers else src.conv_layers
    if not layers:
        raise ValueError(f"{src.name} has no rectified conv layer to default to; name --layers "
                         f"(layers are: {', '.join(src.layers)})")
    fc = {}
    for layer in layers:  # refuse what the deconvnet cannot project before the long search
        fc[layer] = any(l.kind in ("flatten", "linear") for l in deconv.chain(src.model, layer))
    sizes = _layer_sizes(src.model, layers, torch.zeros(3, src.crop, src.crop))
    maps = {}
    for layer in layers:
        n = sizes[layer]
        m = list(range(n)) if wanted is None else wanted
        if m[-1] >= n:
            raise ValueError(f"--maps {args.maps}: layer {layer} has maps 0-{n - 1}")
        maps[layer] = m
    if _embedded(args.images):
        images, names = embedded_images(args.images, src, args.limit)
    else:
        images, paths = sources.read_images(args.images, src.transform, limit=args.limit, progress=progress)
        names = [str(p.relative_to(args.images)) for p in paths]
    if args.k > len(images):
        raise ValueError(f"--k {args.k} is more than the {len(images)} images; valid values are 1…{len(images)}")
    model = src.model.to(device)
    found = distributed.top_activations(model, images, layers, args.k, batch_size=args.batch_size,
                                        progress=progress)
    if not w.main:
        return {}
    model = model.cpu()
    tmp = folder.staging()
    topk.save(found, tmp / "topk.pt")
    (tmp / "images.json").write_text(json.dumps(names, indent=0) + "\n", encoding="utf-8")
    pages = {}
    jobs = [(layer, m[i:i + PER_PNG]) for layer in layers for m in [maps[layer]]
            for i in range(0, len(m), PER_PNG)]
    for layer, chunk in tqdm(jobs, unit="png", desc="drawing", disable=not progress):
        (tmp / layer).mkdir(exist_ok=True)
        top = found[layer]
        fig = plot.fig2(model, images, top, chunk, preprocess=src.transform, ncols=4,
                        crop=not fc[layer], tile=1.4)
        file = f"{layer}/maps_{chunk[0]:03d}-{chunk[-1]:03d}.png"
        fig.savefig(tmp / file, dpi=100, metadata={"Source": MARK})
        cap = f"maps {chunk[0]}-{chunk[-1]}" if len(chunk) > 1 else f"map {chunk[0]}"
        pages.setdefault(layer, []).append((file, cap))
    (tmp / "index.html").write_text(
        _index_html(src.name, str(args.images), len(images), args.k, pages, args.command_line),
        encoding="utf-8")
    folder.publish(last="index.html")
    args.n_images, args.n_layers = len(images), len(layers)
    return pages


def run(args) -> int:
    from matplotlib import pyplot  # noqa: F401  (backend selection before Figure use)
    from .. import distributed
    from ..train import resolve_device

    if not 1 <= args.k <= K_MAX:
        raise ValueError(f"--k must be in 1…{K_MAX} (activations per map, drawn as one mosaic), got {args.k}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be at least 1, got {args.limit}")
    wanted = parse_maps(args.maps)
    device = resolve_device(args.device)
    w = distributed.init(device)
    folder = OutputFolder(args.out, OWN, force=args.force, command=args.command_line,
                          inputs=[("--images", None if _embedded(args.images) else args.images),
                                  ("--model", args.model)])
    args.output = folder  # for Ctrl-C's line
    with folder:
        pages = _visualize(args, w, wanted, device, folder)
    if not w.main:
        return 0
    n_png = sum(len(v) for v in pages.values())
    print(f"wrote {n_png} PNGs for {args.n_layers} layers over {args.n_images} images: {args.out / 'index.html'}")
    return 0


def interrupted(args, e) -> str:
    """Ctrl-C's line: whether the output had been written (``visualize`` and ``occlude``)."""
    folder = getattr(args, "output", None)
    return folder.interrupted() if folder is not None else "interrupted; nothing was written"
