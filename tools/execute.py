"""Execute chapters in place and save their outputs (what `make execute` runs).

    python tools/execute.py book/training.ipynb [more.ipynb ...]
    python tools/execute.py            # every chapter listed in _toc.yml

Cells run in the notebook's folder with the current Python environment's kernel, as under
nbval and jupyter-book. Prints each notebook's wall time.

What is saved is what the chapter shows, so that a re-run changes nothing else: no
per-cell timings, no widget state, and no ipywidgets views
(application/vnd.jupyter.widget-view+json). Without their kernel those views show "model
not found" in Jupyter and Colab, and their model ids are random; the static text/html
version of every zfbook.widgets.Explorer stays, and running the cell brings the live one.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chapters import notebooks  # noqa: E402

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
TIMEOUT = 600    # seconds per cell, as execute.timeout in _config.yml
BUDGET = 120     # seconds per chapter (issue #3)


def execute(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=TIMEOUT, kernel_name="python3", store_widget_state=False,
                   record_timing=False, resources={"metadata": {"path": str(path.parent)}}
                   ).execute()
    seconds = time.perf_counter() - start
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            output.get("data", {}).pop(WIDGET_VIEW, None)
    nbformat.write(nb, path)
    return seconds


def main(paths: list[str]) -> int:
    targets = [Path(p) for p in paths] or notebooks()
    total = 0.0
    for path in targets:
        seconds = execute(path)
        total += seconds
        flag = "  OVER THE 120 s BUDGET" if seconds > BUDGET else ""
        print(f"{seconds:7.1f} s  {path}{flag}", flush=True)
    print(f"{total:7.1f} s  in all ({len(targets)} notebooks)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
