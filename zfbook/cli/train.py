"""``python -m zfbook train``: train a preset with the paper's recipe (Section 3).

``--out`` must be empty or new; ``--resume`` continues the run in it (if it is the same run),
``--force`` starts over (removing only the old run's files). Ctrl-C stops with one line that
says where, and the command that continues (exit status 130).
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

from .. import models
from ..train import DATASETS, DEVICES, LABELS, SNAPSHOTS, Config, Interrupted, available_cores, default_workers, train

NAME = "train"
HELP = "train a preset with the paper's recipe (Section 3)"


def add_arguments(t) -> None:
    t.add_argument("--preset", default="zfnet-mini", help=f"one of: {', '.join(models.PRESETS)}")
    t.add_argument("--device", default="auto", help=f"one of: {', '.join(DEVICES)} (or cuda:N)")
    t.add_argument("--out", required=True, type=Path, help="run folder: last.pt, history.json, snapshots/")
    t.add_argument("--resume", action="store_true", help="continue exactly from OUT/last.pt, as the run "
                   "was started: a recipe flag not given (--epochs, --lr, --anneal, --dropout, ...) keeps "
                   "the run's value; a given --epochs grows the run (refused if it is a different run: "
                   "preset, data, seeds, recipe)")
    t.add_argument("--force", action="store_true", help="start over in a used --out, removing the old "
                   "run's files (last.pt, history.json, snapshots/); with --resume: continue a "
                   "different run anyway")
    t.add_argument("--dataset", default="embedded", help=f"one of: {', '.join(DATASETS)}")
    t.add_argument("--data-root", default="", help="a real dataset's folder (see zfbook.data.load)")
    t.add_argument("--download", action="store_true", help="download a real dataset where torchvision can")
    t.add_argument("--workers", type=int, default=default_workers(),
                   help=f"DataLoader workers for real datasets (default: the CPU cores, at most 4: "
                        f"{default_workers()} here); the results do not depend on it")
    t.add_argument("--seed", type=int, default=0, help="initialisation, data order and augmentation")
    t.add_argument("--data-seed", type=int, default=None,
                   help="the embedded dataset's seed (default: --seed); fix it to vary only the network's seed")
    add_recipe_arguments(t)
    t.add_argument("--weight-decay", type=float, default=5e-4)
    t.add_argument("--conv1-weight-decay", type=float, default=None,
                   help="conv1's own weight decay (default: the recipe's; else --weight-decay)")
    t.add_argument("--no-renorm", action="store_true", help="switch filter renormalisation off (Fig. 6a)")
    t.add_argument("--dropout", type=float, default=None, metavar="P",
                   help="the dropout probability of fc6 and fc7, in [0, 1) (default: the recipe's, 0.5)")
    t.add_argument("--no-augment", action="store_true", help="no random crops or flips: every training "
                   "image takes the centre crop that evaluation takes")
    t.add_argument("--train-per-class", type=int, default=None, metavar="N",
                   help="train on the first N images of each class of the training split (default: all)")
    t.add_argument("--snapshots", default=",".join(map(str, SNAPSHOTS)),
                   help="epochs after which to keep a snapshot of the weights (Fig. 4)")
    t.add_argument("--labels", default="true", choices=LABELS,
                   help="'shuffled': train on a seeded permutation of the training labels (the "
                   "data-randomisation test of the sanity chapter; validation keeps the true labels, so "
                   "the learning-rate plateau and --stop-patience watch the training top-1)")
    t.add_argument("--no-progress", action="store_true")
    from ..outputs import RULE
    t.epilog = RULE


def add_recipe_arguments(p) -> None:
    """The flags that override a preset's recipe (``zfbook.train.RECIPES``); every verb
    that trains (``train``, ``compare``, ``ablate``) takes the same ones."""
    p.add_argument("--epochs", type=int, default=None, help="default: the preset's recipe")
    p.add_argument("--batch-size", type=int, default=None, help="default: the preset's recipe")
    p.add_argument("--lr", type=float, default=None, help="default: the preset's recipe")
    p.add_argument("--anneal", default=None, help="epochs after which the learning rate is ×0.1, "
                   "e.g. 12 or 12,20 (default: the preset's recipe; 'none' for none)")
    p.add_argument("--stop-patience", type=int, default=None,
                   help="after the last --anneal epoch, stop once the validation top-1 has not improved "
                   "for this many epochs (--epochs is then the most; default: train every epoch)")


def epochs(text, flag, what="epochs"):
    """``--snapshots`` / ``--anneal`` (and ``--seeds``, ``what="seeds"``): whole numbers
    separated by commas."""
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        also = " or 'none'" if flag == "--anneal" else ""
        example = "0,1,2" if what == "seeds" else "12,20"
        raise ValueError(f"{flag} takes {what} separated by commas (e.g. {example}){also}, got {text!r}") from None


def cap_workers(n: int) -> int:
    """``--workers`` at most the CPU cores this process may use, with a one-line note: more
    would only start processes that wait (``--workers 1000`` started a thousand)."""
    cores = available_cores()
    if n <= cores:
        return n
    from ..distributed import is_main
    if is_main():
        print(f"note: --workers {n} is more than the {cores} CPU cores here; using {cores}", file=sys.stderr)
    return cores


def anneal(text):
    if text is None:  # the preset's recipe
        return None
    return () if text.strip().lower() == "none" else epochs(text, "--anneal")


def resume_command(command: str) -> str:
    """The command that continues a run: the same one with ``--resume`` and without ``--force``."""
    words = [w for w in shlex.split(command) if w != "--force"]
    if "--resume" not in words:
        words.append("--resume")
    return " ".join(map(shlex.quote, words))


def interrupted(args, e) -> str:
    """The line Ctrl-C prints: where the run stopped and the command that continues it."""
    if not isinstance(e, Interrupted):
        return "interrupted"
    where = f"at epoch {e.epoch} step {e.step}" if e.epoch is not None else "before training started"
    return (f"interrupted {where}; `{resume_command(args.command_line)}` continues from epoch "
            f"{e.resume_epoch}")


def run(args) -> int:
    cfg = Config(preset=args.preset, epochs=args.epochs, device=args.device, dataset=args.dataset,
                 seed=args.seed, data_seed=args.data_seed, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                 conv1_weight_decay=args.conv1_weight_decay,
                 data_root=args.data_root, download=args.download, workers=cap_workers(args.workers),
                 renorm=not args.no_renorm, anneal=anneal(args.anneal), stop_patience=args.stop_patience,
                 labels=args.labels, dropout=args.dropout, augment=not args.no_augment,
                 train_per_class=args.train_per_class, snapshots=epochs(args.snapshots, "--snapshots"),
                 command=args.command_line)
    history = train(cfg, args.out, resume=args.resume, force=args.force, progress=not args.no_progress)
    from ..distributed import is_main
    if history and is_main():  # under torchrun, rank 0 speaks for the job
        h = history[-1]
        print(f"done: epoch {h['epoch']}, val top-1 {h['val_top1']:.2f}%, top-5 {h['val_top5']:.2f}%; "
              f"checkpoint {args.out / 'last.pt'}")
    return 0
