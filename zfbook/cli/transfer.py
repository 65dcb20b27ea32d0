"""``python -m zfbook transfer``: the three arms of Tables 4–5 over the low-shot curve (Fig. 9)."""
from __future__ import annotations

import json
import time
from pathlib import Path

from .. import outputs
from .. import transfer as T
from ..checks import integer

NAME = "transfer"
HELP = "frozen / scratch / finetune accuracy on new classes, over shots per class and draws (Tables 4-5, Fig. 9)"


def add_dataset_arguments(p) -> None:
    """Arguments ``transfer`` and ``probe`` share."""
    p.epilog = outputs.RULE
    p.add_argument("--checkpoint", required=True, help="a checkpoint file or a shipped name (zfnet-mini)")
    p.add_argument("--dataset", default="embedded-transfer", help=f"one of: {', '.join(T.DATASETS)}")
    p.add_argument("--data-root", default="", help="caltech101/caltech256/imagefolder: the dataset's folder")
    p.add_argument("--download", action="store_true", help="download Caltech where torchvision can")
    p.add_argument("--draws", type=int, default=5, help="seeded random draws of the training images")
    p.add_argument("--seed", type=int, default=0, help="seeds the draws (and the training runs)")
    p.add_argument("--out", required=True, type=Path, help="folder of results.json")
    p.add_argument("--force", action="store_true",
                   help="start OUT/results.json over (needed when it holds records of another checkpoint, "
                   "dataset, seed or recipe; a file this command did not write is refused even so)")
    p.add_argument("--device", default="cpu", help="cpu (deterministic), cuda, mps or auto")
    p.add_argument("--no-progress", action="store_true")


def add_arguments(p) -> None:
    add_dataset_arguments(p)
    p.add_argument("--arms", default=",".join(T.ARMS), help=f"some of: {', '.join(T.ARMS)}")
    p.add_argument("--shots", default=",".join(map(str, T.SHOTS)), help="training images per class")
    p.add_argument("--train-draws", type=int, default=None,
                   help="draws for the scratch and finetune arms, the first of --draws (default: all)")
    p.add_argument("--scratch-epochs", type=int, default=None,
                   help=f"the same epochs at every shot count (default: {T.SCRATCH['passes']} passes over "
                        f"the images, at least {T.SCRATCH['min_epochs']} epochs of {T.SCRATCH['epoch_images']}; "
                        "the learning rate drops x0.1 after 3/4 of them)")
    p.add_argument("--jobs", type=int, default=1,
                   help="train the scratch and finetune runs in this many processes, the cores shared "
                   "among them (2 on a 2-core CPU: about 1.25x faster; each record names its threads)")
    p.add_argument("--finetune-epochs", type=int, default=None,
                   help=f"default {T.FINETUNE['epochs']} (the learning rate drops x0.1 after 3/4 of them)")


def setup(args):
    """(transfer set, model, sha256, checkpoint name, device) from the shared arguments."""
    from ..train import resolve_device
    if args.draws < 1:
        raise ValueError(f"--draws must be at least 1, got {args.draws}")
    integer("--seed", args.seed, 0, 2**32 - 1)  # the runs' seeds (seed × 10⁶ + ...) stay within 64 bits
    T._check("dataset", args.dataset, T.DATASETS)
    device = resolve_device(args.device)
    model, sha, name = T.resolve_checkpoint(args.checkpoint)
    tset = T.transfer_set(args.dataset, args.data_root, size=model.preprocess.size, download=args.download)
    return tset, model, sha, name, device


def _recipe(base: dict, epochs):
    if epochs is None:
        return dict(base)
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    fixed = {k: v for k, v in base.items() if k not in ("passes", "min_epochs", "anneal_at")}
    return {**fixed, "epochs": epochs, "anneal": (max(1, round(0.75 * epochs)),) if epochs > 1 else ()}


def run(args) -> int:
    arms = T.parse_list(args.arms, "arm", T.ARMS)
    shots = T.parse_list(args.shots, "shot", cast=int)
    recipes = {"scratch": _recipe(T.SCRATCH, args.scratch_epochs),
               "finetune": _recipe(T.FINETUNE, args.finetune_epochs)}
    outputs.check_place(args.out, inputs=inputs(args))
    tset, model, sha, name, device = setup(args)
    t0 = time.perf_counter()
    with hold(args):
        records = T.run_transfer(tset, model, sha, arms=arms, shots=shots, draws=args.draws,
                                 train_draws=args.train_draws, seed=args.seed, out=args.out, force=args.force,
                                 recipes=recipes, command=args.command_line, checkpoint=name, device=device,
                                 progress=not args.no_progress, jobs=args.jobs)
    print(f"{len(records)} records in {args.out / 'results.json'} ({time.perf_counter() - t0:.0f} s)")
    for arm in arms:
        row = []
        for k in shots:
            vals = [r["top1"] for r in records if r["arm"] == arm and r["shots"] == k]
            if vals:
                row.append(f"{k}: {sum(vals) / len(vals):.1f}")
        print(f"  {arm:9s} mean top-1 by shots  " + "  ".join(row))
    return 0


def inputs(args) -> list:
    """The command's inputs, which ``--out`` must keep clear of."""
    return [("--checkpoint", args.checkpoint), ("--data-root", args.data_root)]


def hold(args):
    """``--out`` checked and held while the records are written (:func:`zfbook.outputs.held`);
    notes what ``results.json`` holds now, for Ctrl-C's message."""
    args.results = args.out / "results.json"
    args.before = _records_in(args.results)
    return outputs.held(args.out, outputs.verb_of(args.command_line, NAME), args.command_line,
                        inputs=inputs(args), temporary=["results.json"])


def _records_in(path) -> set:
    try:
        records = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return set()
    return {json.dumps(r, sort_keys=True) for r in records} if isinstance(records, list) else set()


def interrupted(args, e) -> str:
    """Ctrl-C's line: how many records this command wrote before it (they stay; the same
    command skips them when started again)."""
    path = getattr(args, "results", None)
    if path is None:
        return "interrupted; nothing was written"
    now = _records_in(path)
    new = now - args.before
    if not new:
        return f"interrupted; nothing was written ({path} is as it was)"
    return (f"interrupted; {len(new)} new record{'s' if len(new) != 1 else ''} written to {path} (it holds "
            f"{len(now)}); the same command continues with the rest")
