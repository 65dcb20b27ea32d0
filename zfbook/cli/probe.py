"""``python -m zfbook probe``: a linear classifier on each layer's frozen features (Table 7), on
one checkpoint or several (pretrained seeds, whose records share one file)."""
from __future__ import annotations

import time

import numpy as np

from .. import transfer as T
from ..probes import CLASSIFIERS
from ..outputs import check_place
from .transfer import add_dataset_arguments, hold, inputs, interrupted, setup  # noqa: F401  (interrupted: Ctrl-C's line)

NAME = "probe"
HELP = "linear SVM / softmax on each layer's frozen features, over shots and draws (Table 7)"


def add_arguments(p) -> None:
    add_dataset_arguments(p, several=True)
    p.add_argument("--layers", default=",".join(T.LAYERS), help=f"some of: {', '.join(T.LAYERS)}")
    p.add_argument("--classifiers", default=",".join(CLASSIFIERS), help=f"some of: {', '.join(CLASSIFIERS)}")
    p.add_argument("--shots", default="60", help="training images per class, e.g. 10,60")
    p.add_argument("--pooling", default="max", help=f"conv maps: one of {', '.join(T.POOLINGS)} "
                   f"(max: max-pooled to at most {T.GRID}x{T.GRID} before flattening)")
    p.add_argument("--predictions", action="store_true",
                   help="keep each record's test predictions (for bootstrap intervals over the test images; "
                   "one number per test image and record)")


def run(args) -> int:
    layers = T.parse_list(args.layers, "layer", T.LAYERS)
    classifiers = T.parse_list(args.classifiers, "classifier", CLASSIFIERS)
    shots = T.parse_list(args.shots, "shot", cast=int)
    T._check("pooling", args.pooling, T.POOLINGS)
    check_place(args.out, inputs=inputs(args))
    specs = list(dict.fromkeys(args.checkpoint))
    several = len(specs) > 1
    # every checkpoint is read (and refused if bad) before anything is written
    loaded = [setup(args, spec) for spec in specs]
    shas = [sha for _, _, sha, _, _ in loaded]
    if len(set(shas)) < len(shas):
        raise ValueError("--checkpoint names one checkpoint twice (the same sha256); give each once")
    t0 = time.perf_counter()
    with hold(args):
        for tset, model, sha, name, device in loaded:
            records = T.run_probes(tset, model, sha, layers=layers, classifiers=classifiers, shots=shots,
                                   draws=args.draws, seed=args.seed, pooling=args.pooling, out=args.out,
                                   force=args.force and sha == shas[0], command=args.command_line,
                                   checkpoint=name, device=device, progress=not args.no_progress,
                                   several=several, predictions=args.predictions)
    print(f"{len(records)} records in {args.out / 'results.json'} ({time.perf_counter() - t0:.0f} s)")
    mine = [r for r in records if r["checkpoint_sha256"] in shas and r["pooling"] == args.pooling]
    for c in classifiers:
        for k in shots:
            row = []
            for layer in layers:
                means = [T.summarize(mine, ("layer",), classifier=c, shots=k, checkpoint_sha256=sha).get((layer,))
                         for sha in shas]
                means = [m[0] for m in means if m]
                if means:
                    spread = f" ± {float(np.std(means, ddof=1)):.1f}" if len(means) > 1 else ""
                    row.append(f"{layer} {float(np.mean(means)):.1f}{spread}")
            print(f"  {c:8s} {k} shots: " + "  ".join(row))
    if several:
        print(f"  (means over the {len(shas)} checkpoints of each one's mean over draws, ± their sd)")
    return 0
