"""``python -m zfbook compare``: train presets over several seeds with one recipe and record
each run's test errors (Table 2's comparison, ``zfbook.experiments``)."""
from __future__ import annotations

from pathlib import Path

from .. import models
from ..data.embedded import WORLDS
from ..experiments import grid, load_results, run_experiments
from ..outputs import RULE
from ..train import DEVICES
from .train import add_recipe_arguments, anneal, epochs

NAME = "compare"
HELP = "train presets over several seeds with one recipe; one JSON record per run (resumes)"


def add_arguments(c) -> None:
    c.add_argument("--presets", required=True, help=f"comma-separated, from: {', '.join(models.PRESETS)}")
    add_grid_arguments(c)


def add_grid_arguments(c) -> None:
    """The flags every verb built on :func:`zfbook.experiments.run_experiments` takes."""
    c.epilog = RULE
    c.add_argument("--seeds", default="0,1,2", help="comma-separated network seeds (default 0,1,2)")
    c.add_argument("--dataset", default="embedded", choices=tuple(WORLDS),
                   help="the embedded world the runs train and are tested on (default embedded)")
    c.add_argument("--data-seed", type=int, default=0,
                   help="the embedded dataset's seed, the same for every run (default 0)")
    c.add_argument("--out", required=True, type=Path,
                   help="folder: OUT/<name>-seed<S>/ per run and OUT/results.json")
    add_recipe_arguments(c)
    c.add_argument("--snapshots", default="", help="epochs after which each run keeps a snapshot")
    c.add_argument("--device", default="cpu", help=f"one of: {', '.join(DEVICES)} (default cpu: "
                   "bit-reproducible)")
    c.add_argument("--jobs", type=int, default=1,
                   help="train the runs in this many processes, the cores shared among them (2 on a "
                   "2-core CPU: up to 1.36x faster, no gain for full zfnet-mini runs; each record names "
                   "its threads)")
    c.add_argument("--no-progress", action="store_true")


def run_grid(args, presets) -> list[dict]:
    """Every preset (a name :func:`zfbook.models.preset` accepts) × ``--seeds`` with the
    recipe flags; returns the records of this grid."""
    for p in presets:
        models.preset(p)
    seeds = epochs(args.seeds, "--seeds", "seeds")
    if not presets or not seeds:
        raise ValueError("give at least one network and one seed")
    specs = grid(presets, seeds, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                 anneal=anneal(args.anneal), stop_patience=args.stop_patience,
                 data_seed=args.data_seed, dataset=None if args.dataset == "embedded" else args.dataset)
    args.results = args.out / "results.json"
    args.recorded = {(r["name"], r["seed"]) for r in load_results(args.results)}
    records = run_experiments(specs, args.out, command=args.command_line, device=args.device,
                              snapshots=epochs(args.snapshots, "--snapshots"),
                              progress=not args.no_progress, jobs=args.jobs)
    names = {(s.name, s.seed) for s in specs}
    print(f"{len(names)} runs recorded in {args.out / 'results.json'} ({len(records)} records in all)")
    return [r for r in records if (r["name"], r["seed"]) in names]


def run(args) -> int:
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    for p in presets:
        models._check_choice("preset", p, models.PRESETS)
    run_grid(args, presets)
    return 0


def interrupted(args, e) -> str:
    """What Ctrl-C leaves: the runs recorded before it, and the runs in progress."""
    path = getattr(args, "results", None)
    if path is None:
        return "interrupted; nothing was changed"
    try:
        new = [r for r in load_results(path) if (r["name"], r["seed"]) not in args.recorded]
    except ValueError:
        new = []
    recorded = {f"{r['name']}-seed{r['seed']}" for r in new}
    started = sorted(p.parent.name for p in args.out.glob("*/last.pt") if p.parent.name not in recorded
                     and not any(f"{a}-seed{b}" == p.parent.name for a, b in args.recorded))
    said = (f"{len(new)} run{'s' if len(new) != 1 else ''} finished and recorded in {path}" if new
            else f"no run finished ({path} has no new record)")
    kept = (f"; {', '.join(started)} keep{'s' if len(started) == 1 else ''} {'its' if len(started) == 1 else 'their'} "
            "last finished epoch" if started else "")
    return f"interrupted; {said}{kept}; the same command continues"
