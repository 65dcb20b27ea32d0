"""``python -m zfbook probe``: a linear classifier on each layer's frozen features (Table 7)."""
from __future__ import annotations

import time

from .. import transfer as T
from ..probes import CLASSIFIERS
from ..outputs import check_place
from .transfer import add_dataset_arguments, hold, inputs, interrupted, setup  # noqa: F401  (interrupted: Ctrl-C's line)

NAME = "probe"
HELP = "linear SVM / softmax on each layer's frozen features, over shots and draws (Table 7)"


def add_arguments(p) -> None:
    add_dataset_arguments(p)
    p.add_argument("--layers", default=",".join(T.LAYERS), help=f"some of: {', '.join(T.LAYERS)}")
    p.add_argument("--classifiers", default=",".join(CLASSIFIERS), help=f"some of: {', '.join(CLASSIFIERS)}")
    p.add_argument("--shots", default="60", help="training images per class, e.g. 10,60")
    p.add_argument("--pooling", default="max", help=f"conv maps: one of {', '.join(T.POOLINGS)} "
                   f"(max: max-pooled to at most {T.GRID}x{T.GRID} before flattening)")


def run(args) -> int:
    layers = T.parse_list(args.layers, "layer", T.LAYERS)
    classifiers = T.parse_list(args.classifiers, "classifier", CLASSIFIERS)
    shots = T.parse_list(args.shots, "shot", cast=int)
    T._check("pooling", args.pooling, T.POOLINGS)
    check_place(args.out, inputs=inputs(args))
    tset, model, sha, name, device = setup(args)
    t0 = time.perf_counter()
    with hold(args):
        records = T.run_probes(tset, model, sha, layers=layers, classifiers=classifiers, shots=shots,
                               draws=args.draws, seed=args.seed, pooling=args.pooling, out=args.out,
                               force=args.force, command=args.command_line, checkpoint=name, device=device,
                               progress=not args.no_progress)
    print(f"{len(records)} records in {args.out / 'results.json'} ({time.perf_counter() - t0:.0f} s)")
    for c in classifiers:
        for k in shots:
            row = []
            for layer in layers:
                vals = [r["top1"] for r in records if (r["layer"], r["classifier"], r["shots"], r["pooling"])
                        == (layer, c, k, args.pooling)]
                if vals:
                    row.append(f"{layer} {sum(vals) / len(vals):.1f}")
            print(f"  {c:8s} {k} shots: " + "  ".join(row))
    return 0
