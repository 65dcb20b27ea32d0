"""``python -m zfbook ablate``: Table 3's ablations. Trains a preset's variants (layers
removed or resized, :data:`zfbook.models.VARIANTS`) over several seeds with one recipe and
records each run (``zfbook.experiments``; resumable)."""
from __future__ import annotations

from .. import models
from ..experiments import summarize
from .compare import add_grid_arguments, interrupted, run_grid  # noqa: F401  (interrupted: Ctrl-C's line)

NAME = "ablate"
HELP = "Table 3: train a preset's variants (layers removed or resized) over several seeds (resumes)"


def add_arguments(c) -> None:
    c.add_argument("--preset", default="zfnet-mini", help=f"one of: {', '.join(models.PRESETS)}")
    c.add_argument("--variants", default=",".join(models.VARIANTS),
                   help=f"comma-separated, from: {', '.join(models.VARIANTS)} (default: all)")
    add_grid_arguments(c)


def run(args) -> int:
    models._check_choice("preset", args.preset, models.PRESETS)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in variants:
        models._check_choice("variant", v, models.VARIANTS)
    if len(set(variants)) < len(variants):
        raise ValueError(f"--variants names a variant twice: {args.variants}")
    nets = [args.preset if v == "baseline" else f"{args.preset}:{v}" for v in variants]
    records = run_grid(args, nets)
    print(f"{'variant':24} {'runs':>4} {'params':>10} {'test top-1 error (centre)':>26} {'s / run':>8}")
    for v in variants:
        rs = [r for r in records if r.get("variant", "baseline") == v]
        m, sd, n = summarize(rs, "test_error_top1_centre")
        cost = sum(r["train_seconds"] + r["eval_seconds"] for r in rs) / n
        spread = f"± {sd:<4.2f}" if n > 1 else " " * 6  # one run has no spread
        print(f"{v:24} {n:>4} {rs[0]['params']:>10,} {m:>19.2f} {spread} {cost:>8.0f}")
    return 0
