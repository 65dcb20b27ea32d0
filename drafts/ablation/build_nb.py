"""Write book/ablation.ipynb (issue #12), unexecuted. Run from the repository root once
data/results/ablation.json ships: python drafts/ablation/build_nb.py"""
import sys

import nbformat

sys.path.insert(0, "tools")
from chapters import colab_cell, as_figure as fig, tagged  # noqa: E402

M = nbformat.v4.new_markdown_cell
C = nbformat.v4.new_code_cell


cells = [
M("""# What depth and width buy

**What you will learn:** what happens to `zfnet-mini` when whole layers are taken out or
made narrower or wider, and retrained: which parts of the network its accuracy depends
on, which parts only add parameters, and how to tell a real difference from the spread
between training runs.

**Reproduces:** Table 3 (Section 4.2) of {cite:t}`zeiler2014`, at our scale.

**Runtime:** about 60 s on a 2-core CPU, and no faster on a GPU: it trains one small
variant for one epoch on the CPU, where the run can be compared bit for bit with its
record; the other runs come from shipped records, made by the commands shown below."""),
colab_cell(),
M("""## The experiment

Zeiler and Fergus retrained their network with parts removed or resized and report each
network's training and validation error (Table 3). Their conclusion: no single section
carries the network. Removing the two fully connected layers fc6 and fc7, which hold most
of the parameters, costs only a few points; so does removing the middle convolutions
conv3 and conv4; removing both leaves a network that is far worse. Depth matters, as a
whole. Widening the middle convolutions helps a little; widening the fully connected
layers as well makes the network fit its training images much better and new images no
better, the signature of overfitting.

We retrain the same nine variants of `zfnet-mini`
([`models.VARIANTS`](src:zfbook/models.py)), each built by the same model code as the
presets as `zfnet-mini:<variant>`. The paper made its removals on its AlexNet replication
(Table 3's upper block) and its resizings on its own model (the lower block); we make
both on `zfnet-mini`, so we compare *changes* of error: ours from our baseline, the
paper's from the reference of its block. Widths are scaled by the paper's own ratios:
fc6/fc7 halved or doubled, conv3–conv5 from 96/96/64 to 128/256/128 (as 384/384/256 to
512/1024/512). A removed fc layer takes its dropout with it (Section 3 puts dropout in
layers 6 and 7)."""),
C("""%matplotlib inline
import textwrap

import torch
import zfbook
from zfbook import ablation, experiments, models
from zfbook.display import glue, md, paper_vs_ours, table
from zfbook.plot import ablation as ablplot

torch.manual_seed(0)
records = ablation.load_records()
groups = ablation.by_variant(records)
r0 = groups["baseline"][0]
for command in sorted({r["command"] for rs in groups.values() for r in rs}):
    print(textwrap.fill(command, 79, subsequent_indent="    "))
seeds = sorted({len(rs) for rs in groups.values()})
span = f"{seeds[0]}-{seeds[-1]}" if len(seeds) > 1 else seeds[0]
print(f"{len(records)} records; seeds per variant: {span}")
print(f"the table's recipe: {r0['epochs']} epochs, batch {r0['batch_size']}, "
      f"lr {r0['lr']:g}, x0.1 after epoch {', '.join(map(str, r0['anneal']))}")"""),
C("""rows = []
for v, spec in models.VARIANTS.items():
    mini = models.build(f"zfnet-mini:{v}", 12)
    full = models.build(f"zfnet:{v}", 1000)
    rows.append((v, spec.row, " ".join(models.layer_names(mini)),
                 f"{models.count_parameters(mini) / 1e6:.2f} M",
                 f"{models.macs(mini) / 1e6:.0f} M",
                 f"{models.count_parameters(full) / 1e6:.0f} M"))
table(rows, ["variant", "Table 3 row", "layers", "parameters", "MACs / image",
             "full-size parameters"],
      caption="The nine variants: the layers each keeps, its parameters and "
      "multiply-adds per 112-px image, and the parameters of the same variant "
      "of the full-size ZFNet (1,000 classes).",
      name="ablation-variants")"""),
tagged(C("""base = models.build("zfnet-mini", 12)
rows_ = {r.name: r for r in models.layer_table(base)}
fc = sum(rows_[n].params for n in ("fc6", "fc7")) / models.count_parameters(base)
early = sum(rows_[n].macs for n in ("conv1", "conv2")) / models.macs(base)
cost = {v: models.macs(models.build(f"zfnet-mini:{v}", 12)) / models.macs(base)
        for v in models.VARIANTS}
md(f"As in the paper's network, most of `zfnet-mini`'s parameters sit in fc6 and "
   f"fc7 ({fc:.0%}), but most of its multiply-adds are in conv1 and conv2 "
   f"({early:.0%}): conv3–conv5 work on a 6 × 6 grid. So removing layers saves "
   f"little computation (the shallowest variant needs {cost['no-conv3-conv4-fc6-fc7']:.2f}× "
   f"the baseline's multiply-adds), while widening conv3–conv5 costs "
   f"{cost['conv-wide']:.2f}× them (with wide fc layers too, "
   f"{cost['fc-wide-conv-wide']:.2f}×).")"""), "remove-input"),
M("""### One variant, trained here

Every record can be re-run: training on the CPU is deterministic for a given PyTorch build,
number of threads and kind of CPU, which each record names. The cheapest shipped record is
one epoch of the smallest variant; the next cell trains it again with
[`experiments.reproduce`](src:zfbook/experiments.py), which uses the record's threads, and
compares the final weights' sha256, the per-epoch history and the test numbers with the
record. On another kind of CPU the kernels add in another order and the bits differ,
though not the run: the cell says which case it is in."""),
tagged(C("""import tempfile

cheap = min(records, key=lambda r: (r["epochs"], r["params"]))
with tempfile.TemporaryDirectory() as d:
    got = experiments.reproduce(cheap, d)
same = [k for k in experiments.REPRODUCED if got[k][0] == got[k][1]]
print(f"{cheap['name']}, seed {cheap['seed']}, {cheap['threads']} thread(s)")
print(f"identical: {', '.join(same) or 'nothing'} "
      f"({len(same)} of {len(experiments.REPRODUCED)})")
print(f"test top-1: recorded {got['test_top1_centre'][0]:.2f}%, "
      f"again {got['test_top1_centre'][1]:.2f}%")
print("same kind of CPU:", got["same_cpu"], "| same PyTorch:",
      got["same_torch"])"""),
       "nbval-ignore-output"),
M("""## Table 3 at our scale

{numref}`ablation-table` gives each variant's errors (mean ± standard deviation over the
seeds) and its change from our baseline, with the paper's numbers and the paper's change
beside them. "Train" is the error on the augmented training images during the last epoch,
with dropout on, as a training log reports it; "test" is our held-out test split (the
paper's column is ImageNet's validation set). A change is marked * when it exceeds twice
its standard error, computed from both groups' seed spreads."""),
C("""eff = ablation.effects(groups)
eff_train = ablation.effects(groups, "train")


def signed(x):
    return f"{x:+.1f}".replace("-", "\u2212")  # a minus sign, as the paper prints


def pm(rs, key):
    m, sd, n = experiments.mean_sd(ablation.errors(r)[key] for r in rs)
    return f"{m:.1f} ± {sd:.1f}" if n > 1 else f"{m:.1f}"


rows = []
for v, rs in groups.items():
    e = eff[v]
    star = "*" if e["significant"] else ""
    change = "" if v == "baseline" else f"{signed(e['change'])}{star}"
    pchange = "" if v == "baseline" else signed(e["paper_change"])
    tr, va, t5 = ablation.PAPER_TABLE3[v]
    rows.append((v, len(rs), pm(rs, "train"), pm(rs, "test"), pm(rs, "test5"),
                 change, f"{tr} / {va} / {t5}", pchange))
table(rows, ["variant", "seeds", "train top-1", "test top-1", "test top-5",
             "change", "paper train / val / top-5", "paper change"],
      caption="Error (%) of every variant, ours over seeds and the paper's "
      "Table 3; change: top-1 test (validation) error minus that of the "
      "reference (ours: our baseline; the paper's removals: its Krizhevsky "
      "replication, its resizings: its Fig. 3 model).",
      name="ablation-table")"""),
tagged(C("""import statistics

runs = [r for rs in groups.values() for r in rs]


def alone(r):
    # epochs no slower than 1.5x the run's fastest: the CPU was the run's alone
    fastest = min(h["seconds"] for h in r["history"])
    return [h["seconds"] for h in r["history"] if h["seconds"] <= 1.5 * fastest]


per_epoch = {v: statistics.median(t for r in rs for t in alone(r))
             for v, rs in groups.items()}
slow = sum(r["epochs"] - len(alone(r)) for r in runs)
hours = sum(r["train_seconds"] + r["eval_seconds"] for r in runs) / 3600
shared = (f" Other work shared the CPU during {slow} of the "
          f"{sum(r['epochs'] for r in runs)} epochs, which took longer; the "
          f"recorded seconds keep them as they were." if slow else "")
single = [v for v, rs in groups.items() if len(rs) < 2]
caveat = (f"The variants {', '.join(single)} have one seed so far; one run has "
          f"no spread, so "
          f"{'its change is' if len(single) == 1 else 'their changes are'} "
          f"not marked. " if single else "")
md(f"{caveat}**Cost.** With the CPU to itself, a variant's median epoch took "
   f"{min(per_epoch.values()):.0f} s ({min(per_epoch, key=per_epoch.get)}) "
   f"to {max(per_epoch.values()):.0f} s ({max(per_epoch, key=per_epoch.get)}) "
   f"on the 2-core CPU with "
   f"{'/'.join(str(t) for t in sorted({r['threads'] for r in runs}))} threads; "
   f"the {len(runs)} runs took {hours:.1f} h of training and evaluation in all."
   f"{shared}")"""),
       "remove-input"),
fig(C("""paper_params = {v: models.count_parameters(models.build(f"zfnet:{v}", 1000))
                for v in groups}
ablplot.error_vs_params(groups, paper_params)"""), "ablation-params",
    "Top-1 error against parameter count. Left: our variants on the embedded test "
    "split, a dot per seed, a ring at the mean. Right: the paper's Table 3 validation "
    "errors against the parameters of the same variant of the full-size ZFNet.",
    "Two scatter plots of top-1 error against parameters on a log axis, one colour "
    "per variant. On the right, the paper's, the variant without conv3, conv4, fc6 "
    "and fc7 has the fewest parameters and by far the highest error; on the left, "
    "ours, it is among the lowest, and the variant without conv3 and conv4 is the "
    "highest."),
tagged(C("""one_seed = min(e["n"] for e in eff.values()) < 2


def says(v):
    e = eff[v]
    word = "more" if e["change"] > 0 else "less"
    sig = ("" if e["significant"] else ", from one seed" if e["n"] < 2
           else ", within the spread of the seeds")
    return (f"{abs(e['change']):.1f} points {word} error than the baseline "
            f"(paper: {signed(e['paper_change'])}){sig}")


both = eff["no-conv3-conv4-fc6-fc7"]["change"]
parts = eff["no-fc6-fc7"]["change"] + eff["no-conv3-conv4"]["change"]
if both > max(parts, 0) and eff["no-conv3-conv4-fc6-fc7"]["significant"]:
    depth = "**holds** at our scale"
elif both > max(parts, 0):
    depth = ("points the same way at our scale, within the spread of the seeds"
             if not one_seed else "points the same way at our scale")
else:
    depth = "**does not hold** at our scale"
md(f"Removing fc6 and fc7 gives {says('no-fc6-fc7')}; removing conv3 and "
   f"conv4 gives {says('no-conv3-conv4')}; removing all four gives "
   f"{says('no-conv3-conv4-fc6-fc7')}, against {signed(parts)} for the two "
   f"removals added up. The paper's conclusion that depth as a whole "
   f"matters more than any one section {depth}. "
   f"Removing fc7 alone gives {says('no-fc7')}.")"""), "remove-input"),
M("""## Fitting the training images, and new ones

A network with more capacity than its data needs fits its training images better than it
fits new ones: the gap between the two errors grows. {numref}`ablation-gaps` draws the
gap of every variant."""),
fig(C("""ablplot.gaps(groups)"""), "ablation-gaps",
    "Training error (open circle) and test error (filled circle) of every variant, ours "
    "(left, one pair of circles per seed, the line joins the means) and the paper's "
    "(right, training and validation error).",
    "Two panels, one row per variant, each a line from the training error to the test "
    "error."),
tagged(C("""gap = {v: eff[v]["mean"] - eff_train[v]["mean"] for v in groups}
md(f"Our baseline ends with {eff_train['baseline']['mean']:.1f}% training "
   f"error and {eff['baseline']['mean']:.1f}% test error. Widening fc6/fc7 "
   f"(fc-wide) moves the training error by "
   f"{signed(eff_train['fc-wide']['change'])} points and the test error by "
   f"{signed(eff['fc-wide']['change'])}; widening the convolutions as well moves "
   f"them by {signed(eff_train['fc-wide-conv-wide']['change'])} and "
   f"{signed(eff['fc-wide-conv-wide']['change'])} (paper: "
   f"{signed(eff_train['fc-wide-conv-wide']['paper_change'])} and "
   f"{signed(eff['fc-wide-conv-wide']['paper_change'])}). Widening only the "
   f"convolutions (conv-wide) gives {says('conv-wide')}.")"""), "remove-input"),
fig(C("""ablplot.curves(groups)"""), "ablation-curves",
    "Mean over seeds, per epoch, of the training error (left) and the validation error "
    "(right) of every variant.",
    "Two panels of error against epoch, one line per variant, all falling; the "
    "variants without fc6 and fc7 fall first, and the variant without conv3 and "
    "conv4 stays highest."),
tagged(C("""def first_below(rs, level=50.0):
    # the first epoch whose training error, averaged over the seeds, is below level %
    errs = [[100 - h["train_top1"] for h in r["history"]] for r in rs]
    mean = [sum(e) / len(e) for e in zip(*errs)]
    return next((i + 1 for i, e in enumerate(mean) if e < level), None)


fast = {v: first_below(rs) for v, rs in groups.items()}
zf = [r for r in ablation.load_records(
    zfbook.checkpoint.data_dir() / "results" / "architecture.json")
      if r["preset"] == "zfnet-mini"]
plateau = [r for r in zf if r.get("stop_patience")]
equal = [r["test_error_top1_centre"] for r in zf
         if r["epochs"] == r0["epochs"] and not r.get("stop_patience")]
glue("seed_range", f"{min(equal):.1f}% to {max(equal):.1f}%")
under = eff_train["baseline"]["mean"] > eff["baseline"]["mean"]
md(f"The training error, averaged over the seeds, falls below 50% in epoch "
   f"{fast['no-fc6-fc7']} without fc6 and fc7, in epoch {fast['baseline']} "
   f"for the baseline and in epoch {fast['no-conv3-conv4']} without conv3 and "
   f"conv4. "
   + (f"After {r0['epochs']} epochs the baseline's training error is still "
      f"above its test error (it is measured with dropout on, on augmented "
      f"images): the network is still learning its training images, not "
      f"over-fitting them. " if under else "")
   + f"So part of what the table compares is how fast each variant learns: "
   f"the architecture chapter's `zfnet-mini` runs "
   f"trained until their plateau ({min(r['epochs'] for r in plateau)}–"
   f"{max(r['epochs'] for r in plateau)} epochs) reach "
   f"{sum(r['test_error_top1_centre'] for r in plateau) / len(plateau):.1f}% "
   f"test error (centre crop, mean of {len(plateau)} seeds).")"""), "remove-input"),
M("""## Summary

* Table 3's variants are names: `zfnet-mini:no-fc6-fc7` builds like any preset
  ([`models.preset`](src:zfbook/models.py)), trains with `python -m zfbook train --preset
  zfnet-mini:no-fc6-fc7`, and loads from its checkpoint.
* `python -m zfbook ablate` trains every variant over several seeds with one recipe and
  writes one record per run ([`cli/ablate.py`](src:zfbook/cli/ablate.py)); started again
  it skips finished runs and resumes an interrupted one.
* Read a change of error together with the seeds' spread: the three 20-epoch `zfnet-mini`
  runs of the architecture chapter, which differ only in their seed, end with
  {glue:text}`seed_range` test error, a spread as large as most of the paper's effects.
* {numref}`ablation-table` and the sentences under {numref}`ablation-params` say which of
  the paper's conclusions hold here; they are computed from the shipped records."""),
M("""## Exercises

1. Train one variant yourself with the table's recipe (the flags of the command printed
   at the top) and compare it with the table, e.g. `python -m zfbook train --preset
   zfnet-mini:no-conv3-conv4 --out runs/no34` plus those flags.
2. The paper's removals were made on AlexNet. Repeat them on `alexnet-mini`:
   `python -m zfbook ablate --preset alexnet-mini --variants
   baseline,no-fc7,no-fc6-fc7,no-conv3-conv4,no-conv3-conv4-fc6-fc7 --out
   runs/ablate-alexnet` with the table's recipe flags. Do the same conclusions hold?
3. Deconvnet projections need the layers they pass through: project a conv5 map of
   `zfnet-mini:no-conv3-conv4` (see [the deconvnet chapter](deconvnet.ipynb)). What does
   conv5 see when it sits right on top of conv2?
4. How many seeds would it take to tell the baseline from `no-fc7` at our scale? Use the
   standard deviations of {numref}`ablation-table`."""),
M("""## What the paper reported vs what we measured"""),
C("""def change(v):
    n = eff[v]["n"]
    label = "1 seed" if n == 1 else f"{n} seeds"
    return f"{signed(eff[v]['change'])} points ({label})"


paper_vs_ours([
    ("− fc6, fc7", "+4.3 points (44.8% vs 40.5%)", change("no-fc6-fc7")),
    ("− conv3, conv4", "+4.9 points (45.4% vs 40.5%)",
     change("no-conv3-conv4")),
    ("− conv3, conv4, fc6, fc7", "+30.8 points (71.3% vs 40.5%)",
     change("no-conv3-conv4-fc6-fc7")),
    ("− fc7", "−0.5 points (40.0% vs 40.5%)", change("no-fc7")),
    ("conv3-5 wider", "−0.9 points (37.5% vs 38.4%)", change("conv-wide")),
    ("fc6/7 and conv3-5 wider: train error", "−23.1 points (10.0% vs 33.1%)",
     f"{signed(eff_train['fc-wide-conv-wide']['change'])} points"),
], name="ablation-paper-vs-ours")"""),
]

nb = nbformat.v4.new_notebook()
nb.metadata.update({
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
})
nb.cells = cells
nbformat.write(nb, "book/ablation.ipynb")
print(len(cells), "cells")
