"""What made the shipped files: ``data/MANIFEST.json`` as the appendix page "How the numbers
were made" (``book/appendix_numbers.ipynb``) shows it.

The manifest names, for every checkpoint in ``data/`` and every file of measurements in
``data/results/``, the command that made it, its seeds, threads, PyTorch build, code
revision, wall time and checksum (:func:`zfbook.checkpoint.manifest`). This module turns
those entries into the page's tables and command listings, so the page cannot drift from
the files; :func:`runs_table` goes one level down, to the training runs a results file
records (:mod:`zfbook.experiments`). Commands are printed as shell lines wrapped to the
book's 79-character column.
"""
from __future__ import annotations

import json
import re
import shlex
import statistics
import textwrap

from . import experiments
from .checkpoint import data_dir, manifest
from .display import table

#: a command quoted in a manifest's note (shown as code, so that ``--`` stays two dashes)
_COMMAND = re.compile(r"python -m zfbook(?: --?[\w-]+(?: (?!-)[\w.,:/=+-]+)?| [a-z][\w-]*)+")

__all__ = ["checkpoints", "results", "shell", "commands", "checkpoints_table",
           "results_table", "runs_table", "notes"]


def checkpoints() -> dict[str, dict]:
    """The manifest's checkpoint entries (file name → entry), in the manifest's order."""
    return {k: v for k, v in manifest().items() if k.endswith(".pt")}


def results() -> dict[str, dict]:
    """The manifest's entries for ``data/results/*.json`` (``results/NAME.json`` → entry)."""
    return {k: v for k, v in manifest().items() if k.startswith("results/")}


def shell(command: str, width: int = 79) -> str:
    """``command`` as shell lines of at most ``width`` characters (where the words allow),
    continued with ``\\``; a flag stays on the line of its value."""
    words = shlex.split(command)
    units = []
    for w in words:
        if units and units[-1].startswith("--") and " " not in units[-1] \
                and not w.startswith("-"):
            units[-1] += " " + shlex.quote(w)
        else:
            units.append(shlex.quote(w))
    lines = [units[0]]
    for u in units[1:]:
        if len(lines[-1]) + 1 + len(u) + 2 <= width:
            lines[-1] += " " + u
        else:
            lines.append("    " + u)
    return " \\\n".join(lines)


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _seconds(value) -> float:
    """A manifest's ``wall_seconds``: one number, or one per command (a list, or a mapping
    of command or part to seconds), summed."""
    if isinstance(value, dict):
        value = list(value.values())
    return sum(_seconds(v) for v in value) if isinstance(value, (list, tuple)) else float(value)


def commands(*names: str) -> str:
    """A Markdown ``bash`` block with the distinct commands of the manifest entries
    ``names`` (in the order first seen); with several entries, each command is headed by
    a comment naming the files it made."""
    entries = manifest()
    made: dict[str, list[str]] = {}
    for name in names:
        for command in _as_list(entries[name]["command"]):
            made.setdefault(command, []).append(name)
    blocks = []
    for command, files in made.items():
        head = textwrap.wrap(", ".join(files), 77, initial_indent="# ",
                             subsequent_indent="# ", break_on_hyphens=False) if len(names) > 1 else []
        blocks.append("\n".join([*head, shell(command)]))
    return "```bash\n" + "\n\n".join(blocks) + "\n```"


def checkpoints_table(name: str = "numbers-checkpoints"):
    """One row per shipped checkpoint: epochs, test top-1 (centre crop and 10 crops) and
    the run's training minutes, as the manifest gives them."""
    rows = [(f"`{file}`", e["epochs"], f"{e['test_top1_centre']:.2f}%",
             f"{e['test_top1_10crop']:.2f}%", f"{_seconds(e['wall_seconds']) / 60:.1f}")
            for file, e in sorted(checkpoints().items(),
                                  key=lambda item: (item[1]["preset"], item[1]["epochs"]))]
    return table(rows, ["file", "epochs", "top-1, centre", "top-1, 10 crops", "minutes"],
                 caption="The shipped checkpoints in `data/`, from `data/MANIFEST.json`: "
                         "test accuracy of the float16 file and the run's wall time.",
                 name=name)


def _count(entry: dict, file: str) -> int:
    if "records" in entry:
        return int(entry["records"])
    if "runs" in entry:
        return len(entry["runs"])
    data = json.loads((data_dir() / file).read_text())
    return len(data["records"] if isinstance(data, dict) else data)


def _cpus(entry: dict) -> str:
    cpus = entry.get("cpu")
    if not cpus:
        return "not named"
    names = [c.get("model", str(c)) if isinstance(c, dict) else str(c) for c in _as_list(cpus)]
    return ", ".join(re.sub(r"\s+", " ", re.sub(r"\(R\)|Processor", "", n)).strip() for n in names)


def results_table(name: str = "numbers-results"):
    """One row per file of measurements: how many records and seeds, the threads, PyTorch
    build and kinds of CPU they name, and the minutes they took (summed when the manifest
    gives them per command)."""
    rows = []
    for file, e in results().items():
        threads = ", ".join(str(t) for t in _as_list(e.get("threads", "")))
        rows.append((f"`{file.split('/')[-1]}`", _count(e, file),
                     ", ".join(str(s) for s in _as_list(e.get("seeds", e.get("seed", "")))),
                     threads if len(threads) < 12 else "per record",
                     ", ".join(_as_list(e.get("torch", ""))), _cpus(e),
                     f"{_seconds(e['wall_seconds']) / 60:.0f}"))
    return table(rows, ["file", "records", "seeds", "threads", "PyTorch", "CPU", "minutes"],
                 caption="The measurements in `data/results/`, from `data/MANIFEST.json`.",
                 name=name)


def runs_table(file: str, *, where=None, name: str | None = None, caption: str | None = None):
    """One row per training run recorded in the shipped results file ``file`` (a manifest
    name such as ``"results/ablation.json"``), or per run for which ``where(record)`` is
    true: its name and seed, how it ended (:func:`zfbook.experiments.ending`: epochs of the
    recipe's limit, stopped at its plateau or at the limit, the epochs after which the
    learning rate was cut, the change of validation top-1 over its last 3 epochs), test
    top-1 (centre crop), the median seconds of an epoch (training and validation), the
    minutes of training and evaluation, threads and code revision. ``name`` defaults to
    ``numbers-<file>-runs``."""
    files = [f for f, e in results().items() if e.get("format") == experiments.RESULTS_FORMAT]
    if file not in files:
        raise ValueError(f"no shipped runs in {file!r}; the files of runs are: {', '.join(files)}")
    records = [r for r in experiments.load_results(data_dir() / file) if where is None or where(r)]
    if not records:
        raise ValueError(f"no run of {file} is selected by where=")
    rows = []
    for r in records:
        end = experiments.ending(r)
        gain = end["val_top1_gain"]
        rev = r.get("code_revision", "unknown")
        rows.append((f"`{r['name']}`", r["seed"], f"{end['epochs']} of {end['limit']}", end["stopped"],
                     ", ".join(map(str, end["lr_cuts"])) or "none",
                     "–" if gain is None else f"{gain:+.2f}", f"{r['test_top1_centre']:.2f}%",
                     f"{statistics.median(h['seconds'] for h in r['history']):.0f}",
                     f"{r['seconds'] / 60:.1f}", r["threads"],
                     f"`{rev[:7]}{'+dirty' if rev.endswith('+dirty') else ''}`"))
    stem = file.split("/")[-1].removesuffix(".json")
    return table(rows, ["run", "seed", "epochs", "stopped at", "lr cut after", "last 3 epochs",
                        "test top-1", "s / epoch", "minutes", "threads", "revision"],
                 caption=caption or f"The runs of `{stem}.json`: epochs trained of the recipe's "
                 "limit, whether the run stopped at its plateau or at the limit, the epochs after "
                 "which the learning rate was cut, the change of validation top-1 (points) over "
                 "the last 3 epochs, test top-1 (centre crop), the median seconds of an epoch with "
                 "its validation, the minutes of training and evaluation, threads and the code "
                 "revision of the tree that recorded it.",
                 name=name or f"numbers-{stem}-runs")


def notes(*names: str) -> str:
    """The manifest's notes on the entries ``names`` (what the files cannot say: the
    machine, what else ran beside the run), as Markdown paragraphs."""
    entries = manifest()
    quoted = {n: _COMMAND.sub(lambda m: f"`{m.group(0)}`", entries[n].get("note", ""))
              for n in names}
    return "\n\n".join(f"**`{n}`**: {note}" for n, note in quoted.items() if note)
