"""The book's structure: every chapter in _toc.yml exists, is committed executed and
error-free, opens with the Colab cell and closes with the sections CONVENTIONS.md asks for.

nbval (in `make test`) checks that the committed outputs match a fresh execution; these
checks are the cheap, static half.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from chapters import (CLOSING_SECTIONS, colab_cell_source, config, notebooks,  # noqa: E402
                      repository_url)

NOTEBOOKS = notebooks()
ROOT_PAGE = NOTEBOOKS[0]  # the preface: no experiment, so no closing sections
IDS = [str(p.relative_to(ROOT)) for p in NOTEBOOKS]


def read(path: Path):
    return nbformat.read(path, as_version=4)


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def headings(nb) -> list[str]:
    return [m.group(1).strip() for c in nb.cells if c.cell_type == "markdown"
            for m in re.finditer(r"^#{1,6}\s+(.*)$", c.source, re.M)]


def test_toc_lists_the_preface_first_and_only_notebooks_in_book():
    assert ROOT_PAGE == ROOT / "book" / "index.ipynb"
    assert all(p.parent == ROOT / "book" for p in NOTEBOOKS)
    assert len(set(NOTEBOOKS)) == len(NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_chapter_is_valid_and_runs_in_the_project_kernel(path):
    nb = read(path)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    assert re.match(r"# \S", nb.cells[0].source), "a chapter opens with its '# Title'"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_first_code_cell_installs_zfbook_on_colab_only(path):
    first = code_cells(read(path))[0]
    assert first.source == colab_cell_source(), (
        "the first code cell must be tools/chapters.py's colab_cell_source() "
        f"(repository {repository_url()} from _config.yml)")
    assert 'if "google.colab" in sys.modules:' in first.source
    assert repository_url() in first.source
    assert first.outputs == []  # it does nothing outside Colab


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_chapter_is_committed_executed_top_to_bottom_without_errors(path):
    cells = code_cells(read(path))
    counts = [c.execution_count for c in cells if c.source.strip()]
    assert None not in counts, "run the chapter and save it with its outputs (make execute NB=...)"
    assert counts == list(range(1, len(counts) + 1)), "executed once, top to bottom, in one kernel"
    assert any(c.outputs for c in cells), "a chapter shows something"
    for cell in cells:
        for out in cell.outputs:
            assert out.output_type != "error", f"error output in cell:\n{cell.source[:200]}"
            text = out.get("text", "")
            assert "Traceback (most recent call last)" not in text
            assert "application/vnd.jupyter.widget-view+json" not in out.get("data", {}), (
                "a live widget view was saved; save with `make execute`, which drops them")


@pytest.mark.parametrize("path", NOTEBOOKS[1:], ids=IDS[1:])
def test_chapter_has_title_block_and_closing_sections(path):
    nb = read(path)
    title = nb.cells[0].source
    for word in ("CPU", "GPU"):
        assert word in title, f"the title block states the runtime on the {word}"
    found = [h.lower() for h in headings(nb)]
    for section in CLOSING_SECTIONS:
        assert section.lower() in found, f"missing section '## {section}'"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_no_latex_math(path):
    """The book loads no MathJax (it would come from a CDN): write math in Unicode."""
    for cell in read(path).cells:
        if cell.cell_type == "markdown":
            assert not re.search(r"\$\$|\\\(|\\\[|(?<![\w$])\$[^\s$][^$\n]*\$", cell.source), (
                f"LaTeX math in a markdown cell; use Unicode (×, σ, ≤):\n{cell.source[:200]}")


def test_config_keeps_the_book_offline_and_launchable():
    c = config()
    sphinx = c["sphinx"]["config"]
    assert sphinx["nb_ipywidgets_js"] == {}  # no require.js / widget manager from a CDN
    assert ["*", "application/vnd.jupyter.widget-view+json", None] in sphinx[
        "nb_mime_priority_overrides"]
    assert not {"dollarmath", "amsmath"} & set(sphinx["myst_enable_extensions"])
    assert "sphinx_thebe" not in sphinx["extensions"]
    assert c["execute"]["timeout"] > 30
    assert c["launch_buttons"]["colab_url"] and c["launch_buttons"]["binderhub_url"]
    assert c["repository"]["url"].startswith("https://github.com/")
