"""Ship an experiment's records: copy ``OUT/results.json`` (``python -m zfbook compare`` or
``ablate``) to ``data/results/NAME.json`` and record it in ``data/MANIFEST.json``.

    python tools/ship_results.py OUT/results.json [OUT2/results.json ...] NAME --note "..."

Several results files (e.g. two ``compare`` commands with different recipes) are joined in
the order given; a run (name and seed) found twice is refused.

The manifest entry lists every command, seed, run and code revision found in the records,
the threads, PyTorch builds and CPU kinds, the summed training and evaluation seconds, the sha256 and size, and the note (say there
what the records cannot: the machine, what else ran beside it). A record made from a tree
with uncommitted changes (``+dirty``) is refused: re-run it from a clean checkout. The
records' commands name no absolute folder: a path in them is made relative to the current
folder.
Both files are replaced atomically.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from zfbook.checkpoint import sha256  # noqa: E402
from zfbook.cli import relative_command  # noqa: E402
from zfbook.experiments import RESULTS_FORMAT, load_results  # noqa: E402
from zfbook.experiments import _write_results as write_results  # noqa: E402


def _replace(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def _distinct(values) -> list:
    """The distinct values (dicts too), in the order first seen."""
    out = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


def ship(srcs, name: str, note: str, root: Path = ROOT) -> dict:
    srcs = [Path(s) for s in ([srcs] if isinstance(srcs, (str, Path)) else srcs)]
    records = [r for src in srcs for r in load_results(src)]
    if not records:
        raise SystemExit(f"{', '.join(map(str, srcs))} hold no records")
    runs = [f"{r['name']} seed {r['seed']}" for r in records]
    twice = sorted({run for run in runs if runs.count(run) > 1})
    if twice:
        raise SystemExit(f"runs found twice: {', '.join(twice)}")
    dirty = sorted({run for run, r in zip(runs, records)
                    if r["code_revision"].endswith("+dirty") or r["code_revision"] == "unknown"})
    if dirty:
        raise SystemExit(f"records made from an uncommitted tree: {', '.join(dirty)}; re-run them "
                         "from a clean checkout")
    for r in records:  # a shipped record names no folder of the machine that made it
        for key in ("command", "trained_by"):
            if key in r:
                r[key] = relative_command(r[key])
    dst = root / "data" / "results" / f"{name}.json"
    write_results(dst, records)  # atomic
    entry = {
        "command": sorted({r["command"] for r in records}),
        "seeds": sorted({r["seed"] for r in records}),
        "runs": runs,
        "code_revision": sorted({r["code_revision"] for r in records}),
        "threads": sorted({r["threads"] for r in records}),
        "torch": sorted({r.get("torch", "not recorded") for r in records}),
        "cpu": _distinct(r.get("cpu", "not recorded") for r in records),
        "wall_seconds": round(sum(r["train_seconds"] + r["eval_seconds"] for r in records), 1),
        "sha256": sha256(dst),
        "bytes": dst.stat().st_size,
        "format": RESULTS_FORMAT,
        "note": note,
    }
    path = root / "data" / "MANIFEST.json"
    manifest = json.loads(path.read_text())
    manifest[f"results/{name}.json"] = entry
    _replace(path, lambda tmp: tmp.write_text(json.dumps(manifest, indent=2) + "\n"))
    return entry


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src", type=Path, nargs="+")
    p.add_argument("name")
    p.add_argument("--note", required=True)
    a = p.parse_args()
    print(json.dumps(ship(a.src, a.name, a.note), indent=1))
