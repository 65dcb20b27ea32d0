"""``python -m zfbook transfer``: the three arms of Tables 4–5 over the low-shot curve (Fig. 9),
the hand-crafted baselines beside them, and (``--choose-recipes``) every arm's recipe chosen
on the validation split first (:mod:`zfbook.transfer.choose`)."""
from __future__ import annotations

import json
import time
from pathlib import Path

from .. import outputs
from .. import transfer as T
from ..checks import integer

NAME = "transfer"
HELP = "frozen / scratch / finetune accuracy on new classes, over shots per class and draws (Tables 4-5, Fig. 9)"


def add_dataset_arguments(p, several: bool = False) -> None:
    """Arguments ``transfer`` and ``probe`` share (``several``: ``--checkpoint`` takes one or more)."""
    p.epilog = outputs.RULE
    if several:
        p.add_argument("--checkpoint", required=True, nargs="+",
                       help="one or more checkpoint files or shipped names (zfnet-mini), e.g. the three seeds' "
                       "last.pt of a compare run; several share OUT/results.json, each record naming its "
                       "checkpoint's sha256")
    else:
        p.add_argument("--checkpoint", required=True, help="a checkpoint file or a shipped name (zfnet-mini)")
    p.add_argument("--dataset", default="embedded-transfer", help=f"one of: {', '.join(T.DATASETS)}")
    p.add_argument("--data-root", default="", help="caltech101/caltech256/imagefolder: the dataset's folder")
    p.add_argument("--download", action="store_true", help="download Caltech where torchvision can")
    p.add_argument("--draws", type=int, default=5, help="seeded random draws of the training images")
    p.add_argument("--seed", type=int, default=0, help="seeds the draws (and the training runs)")
    p.add_argument("--out", required=True, type=Path, help="folder of results.json")
    p.add_argument("--force", action="store_true",
                   help="start OUT/results.json over (needed when it holds records of another checkpoint, "
                   "dataset, seed or recipe; a file this command did not write is refused even so; with "
                   "transfer --choose-recipes, OUT/validation.json too)")
    p.add_argument("--device", default="cpu", help="cpu (deterministic), cuda, mps or auto")
    p.add_argument("--no-progress", action="store_true")


def add_arguments(p) -> None:
    add_dataset_arguments(p)
    p.add_argument("--arms", default=",".join(T.ARMS),
                   help=f"some of: {', '.join(T.ARMS + T.BASELINES)} ({' and '.join(T.BASELINES)}: hand-crafted "
                   "baselines, HOG or pixels of the centre crop with a linear SVM whose C is chosen by "
                   "cross-validation on the training shots; run only when named)")
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
    grids = "; ".join(f"{a} " + " / ".join(",".join(f"{k}={v}" for k, v in g.items()) for g in T.GRIDS[a])
                      for a in T.GRIDS)
    p.add_argument("--choose-recipes", action="store_true",
                   help="choose each arm's recipe at each number of shots on the dataset's validation split, "
                   "never its test split, then run the test records with the chosen recipes: every candidate "
                   "of the arm's grid is trained on the first --choose-draws draws of training shots and "
                   "scored on the validation images (OUT/validation.json); the best mean wins, ties going to "
                   "the first listed (the default). The frozen arm then also has its C chosen by "
                   f"cross-validation on the training shots (C = 1 at 1 shot). Grids: {grids}. Needs a "
                   "dataset with a validation split (parts-transfer)")
    p.add_argument("--choose-draws", type=int, default=1,
                   help="with --choose-recipes: the draws each candidate is scored on (default 1: draw 0)")


def setup(args, spec=None):
    """(transfer set, model, sha256, checkpoint name, device) from the shared arguments, for
    checkpoint ``spec`` (default: ``--checkpoint``). Sets are read once per image size."""
    from ..train import resolve_device
    if args.draws < 1:
        raise ValueError(f"--draws must be at least 1, got {args.draws}")
    integer("--seed", args.seed, 0, 2**32 - 1)  # the runs' seeds (seed × 10⁶ + ...) stay within 64 bits
    T._check("dataset", args.dataset, T.DATASETS)
    device = resolve_device(args.device)
    model, sha, name = T.resolve_checkpoint(args.checkpoint if spec is None else spec)
    sets = args.__dict__.setdefault("_sets", {})
    size = model.preprocess.size
    if size not in sets:
        sets[size] = T.transfer_set(args.dataset, args.data_root, size=size, download=args.download)
    return sets[size], model, sha, name, device


def _recipe(base: dict, epochs):
    if epochs is None:
        return dict(base)
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    fixed = {k: v for k, v in base.items() if k not in ("passes", "min_epochs", "anneal_at")}
    return {**fixed, "epochs": epochs, "anneal": (max(1, round(0.75 * epochs)),) if epochs > 1 else ()}


def run(args) -> int:
    arms = T.parse_list(args.arms, "arm", T.ARMS + T.BASELINES)
    shots = T.parse_list(args.shots, "shot", cast=int)
    recipes = {"scratch": _recipe(T.SCRATCH, args.scratch_epochs),
               "finetune": _recipe(T.FINETUNE, args.finetune_epochs)}
    if args.choose_draws < 1:
        raise ValueError(f"--choose-draws must be at least 1, got {args.choose_draws}")
    outputs.check_place(args.out, inputs=inputs(args))
    tset, model, sha, name, device = setup(args)
    if args.choose_recipes:
        tset.validation_split(1, 0)   # a dataset without a validation split is refused before anything
    t0 = time.perf_counter()
    with hold(args):
        records = T.run_transfer(tset, model, sha, arms=arms, shots=shots, draws=args.draws,
                                 train_draws=args.train_draws, seed=args.seed, out=args.out, force=args.force,
                                 recipes=recipes, command=args.command_line, checkpoint=name, device=device,
                                 progress=not args.no_progress, jobs=args.jobs, choose=args.choose_recipes,
                                 choose_draws=args.choose_draws)
    print(f"{len(records)} records in {args.out / 'results.json'} ({time.perf_counter() - t0:.0f} s)")
    ours = [r for r in records if r["arm"] in arms and r["shots"] in shots]
    try:
        ci = T.bootstrap(ours, tset, n_resamples=2000, seed=args.seed)
        said = f"95% bootstrap intervals over the {ours[0]['n_test'] if ours else 0} test images; "
    except ValueError:   # a test set per draw (Caltech): the means alone
        ci = {k: T.Interval(m, float("nan"), float("nan"), n, sd, 0.95) for k, (m, sd, n) in T.summarize(ours).items()}
        said = ""
    for arm in arms:
        row = [f"{k}: {ci[arm, k].mean:.1f}" + (f" [{ci[arm, k].low:.1f}, {ci[arm, k].high:.1f}]" if said else "")
               for k in shots if (arm, k) in ci]
        print(f"  {arm:9s} mean top-1 by shots  " + "  ".join(row))
        picked = [(k, r["chosen"]["setting"]) for k in shots for r in ours
                  if r["arm"] == arm and r["shots"] == k and r["draw"] == 0 and "chosen" in r]
        if picked:
            print(f"  {'':9s} chosen on validation  " + "  ".join(
                f"{k}: {','.join(f'{a}={v}' for a, v in s.items())}" for k, s in picked))
    print(f"  ({said}chance {T.chance(tset):.1f}%)")
    return 0


def inputs(args) -> list:
    """The command's inputs, which ``--out`` must keep clear of."""
    specs = args.checkpoint if isinstance(args.checkpoint, list) else [args.checkpoint]
    return [("--checkpoint", c) for c in specs] + [("--data-root", args.data_root)]


def hold(args):
    """``--out`` checked and held while the records are written (:func:`zfbook.outputs.held`);
    notes what ``results.json`` (and ``validation.json``) hold now, for Ctrl-C's message."""
    args.results = args.out / "results.json"
    args.before = _records_in(args.results)
    args.validation = args.out / "validation.json"
    args.before_validation = _records_in(args.validation)
    return outputs.held(args.out, outputs.verb_of(args.command_line, NAME), args.command_line,
                        inputs=inputs(args), temporary=["results.json", "validation.json"])


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
    val = getattr(args, "validation", None)
    val_new = len(_records_in(val) - args.before_validation) if val is not None else 0
    wrote = [f"{len(new)} new record{'s' if len(new) != 1 else ''} written to {path} (it holds {len(now)})"] if new else []
    if val_new:
        wrote.append(f"{val_new} validation record{'s' if val_new != 1 else ''} written to {val}")
    if not wrote:
        return f"interrupted; nothing was written ({path} is as it was)"
    return f"interrupted; {' and '.join(wrote)}; the same command continues with the rest"
