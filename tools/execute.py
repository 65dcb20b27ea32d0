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
Outputs that are only tqdm progress bars are dropped too: saved, a bar is its first state
(``0%|          | 0/8``) forever (tools/book_ext.py drops any left from the pages).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from book_ext import is_progress_bar  # noqa: E402
from chapters import notebooks  # noqa: E402

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
TIMEOUT = 600    # seconds per cell, as execute.timeout in _config.yml
LIMIT = 120      # seconds per chapter (CONVENTIONS.md)


def execute(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=TIMEOUT, kernel_name="python3", store_widget_state=False,
                   record_timing=False, resources={"metadata": {"path": str(path.parent)}}
                   ).execute()
    seconds = time.perf_counter() - start
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        kept = []
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if data.pop(WIDGET_VIEW, None) is not None and set(data) == {"text/plain"} \
                    and is_progress_bar(data["text/plain"]):
                continue                         # a tqdm widget: only its first state
            if output.get("output_type") == "stream" and is_progress_bar(output["text"]):
                continue                         # a text-mode bar
            kept.append(output)
        if cell.cell_type == "code":
            cell.outputs = kept
    nbformat.write(nb, path)
    return seconds


def main(paths: list[str]) -> int:
    targets = [Path(p) for p in paths] or notebooks()
    total = 0.0
    for path in targets:
        seconds = execute(path)
        total += seconds
        flag = "  OVER 120 s" if seconds > LIMIT else ""
        print(f"{seconds:7.1f} s  {path}{flag}", flush=True)
    print(f"{total:7.1f} s  in all ({len(targets)} notebooks)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
