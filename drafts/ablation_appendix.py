"""Rewrite appendix_numbers' ablation section for the re-made record. Run from /work/switch
after data/results/ablation.json and its manifest entry are shipped.

Written for the lost branch's appendix_numbers: now a template (the new appendix is rewritten
first). It needs `from zfbook.display import series` in the appendix's imports."""
import nbformat
from nbformat.v4 import new_code_cell

P = "book/appendix_numbers.ipynb"
nb = nbformat.read(P, as_version=4)
c = nb.cells
i = next(k for k, x in enumerate(c) if x.source.startswith("(the-ablation)="))
assert "provenance.commands(\"results/ablation.json\")" in c[i + 1].source
assert "With the CPU to itself" in c[i + 2].source
c[i].source = "(the-ablation)=\n### The ablation"
what = new_code_cell('''abl = load_results(data_dir() / "results" / "ablation.json")
variants = [r for r in abl if r["variant"] != "baseline" and r["epochs"] > 1]
base = [r for r in abl if r["variant"] == "baseline"]
by_run = {(r["name"], r["seed"]): r for r in arch}
same = all(r["weights_sha256"] == by_run[r["name"], r["seed"]]["weights_sha256"]
           and r["test_top1_centre"] == by_run[r["name"], r["seed"]]["test_top1_centre"]
           for r in base)
assert same, "the ablation's baseline is not the architecture runs"
cheap = [r for r in abl if r["epochs"] == 1]
md(f"Table 3's {len(variants)} variant runs "
   f"({len({r['variant'] for r in variants})} variants × seeds "
   f"{series(sorted({r['seed'] for r in variants}))}), each "
   f"trained to its plateau with the minis' recipe (above), two runs at a "
   f"time with one thread each (`--jobs 2`). The baseline is not trained "
   f"again: its {len(base)} runs are the architecture comparison's "
   f"`zfnet-mini` runs, whose folders were linked into the ablation's "
   f"output folder, so `ablate` found them finished and only evaluated "
   f"them; their records here have the same weights (sha256) and test "
   f"numbers as in `architecture.json`. Beside them, a 1-epoch record of "
   f"the smallest variant (`{cheap[0]['variant']}`, seed "
   f"{cheap[0]['seed']}) that the chapter trains again live:")''')
what.metadata["tags"] = ["remove-input"]
runs = new_code_cell('''provenance.runs_table(
    "results/ablation.json", name="numbers-ablation-runs",
    where=lambda r: r["variant"] != "baseline",
    caption="The variant runs of `ablation.json`: epochs trained, the median "
    "seconds of an epoch with its validation (two runs sharing the CPU, "
    "under the load the note below describes), threads, and the code "
    "revision of the tree that finished and evaluated each run (the note "
    "says where runs were continued). The baseline's runs are in "
    "{numref}`numbers-architecture-runs`.")''')
cost = new_code_cell('''med = {}
for r in variants:
    med.setdefault(r["variant"], []).extend(h["seconds"] for h in r["history"])
med = {v: statistics.median(s) for v, s in med.items()}
lo, hi = min(med, key=med.get), max(med, key=med.get)
hours = sum(r["train_seconds"] + r["eval_seconds"] for r in variants) / 3600
md(f"Two runs sharing the 2-core CPU, a variant's median epoch took "
   f"{med[lo]:.0f} s (`{lo}`) to {med[hi]:.0f} s (`{hi}`); the "
   f"{len(variants)} variant runs took {hours:.1f} hours of training and "
   f"evaluation, summed over runs. The chapter's live run trains the "
   f"1-epoch record again with `experiments.reproduce`, which sets the "
   f"record's thread count and compares the final weights' sha256, the "
   f"history (without the seconds) and the centre-crop test numbers with "
   f"the record; a hidden cell of the chapter asserts the same bits on the "
   f"record's kind of CPU and PyTorch build, and otherwise a difference "
   f"within 3 points.")''')
cost.metadata["tags"] = ["remove-input"]
c[i + 2] = cost
c.insert(i + 2, runs)
c.insert(i + 1, what)
nbformat.write(nb, P)
print("ok", i)
