"""The book's chapters, read from _toc.yml, and the skeleton of a new chapter.

    python tools/chapters.py                      # list every chapter notebook, in order
    python tools/chapters.py new book/x.ipynb "Title"   # write a chapter skeleton

The repository URL is read from _config.yml (repository.url), its only home: the Colab
cell that opens every chapter is generated from it, and tests/test_book.py checks it.
"""
from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent

#: the closing sections every chapter has (CONVENTIONS.md, "Closing")
CLOSING_SECTIONS = ("Summary", "Exercises", "What the paper reported vs what we measured")


def config(root: Path = ROOT) -> dict:
    return yaml.safe_load((root / "_config.yml").read_text())


def repository_url(root: Path = ROOT) -> str:
    return config(root)["repository"]["url"]


def _files(entries):
    for entry in entries or []:
        if "file" in entry:
            yield entry["file"]
        yield from _files(entry.get("sections"))
        yield from _files(entry.get("chapters"))


def chapters(root: Path = ROOT) -> list[Path]:
    """Every page listed in _toc.yml (root first) as a path, in reading order.

    Raises if a listed page has no .ipynb or .md file.
    """
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    names = [toc["root"], *_files(toc.get("chapters")), *_files(toc.get("parts"))]
    pages = []
    for name in names:
        found = [root / f"{name}{ext}" for ext in ("", ".ipynb", ".md")
                 if (root / f"{name}{ext}").is_file()]
        if not found:
            raise FileNotFoundError(f"_toc.yml lists {name!r}, but there is no {name}.ipynb")
        pages.append(found[0])
    return pages


def notebooks(root: Path = ROOT) -> list[Path]:
    return [p for p in chapters(root) if p.suffix == ".ipynb"]


def colab_cell_source(url: str | None = None) -> str:
    """The first code cell of every chapter: installs zfbook on Colab, nothing elsewhere."""
    url = url or repository_url()
    return f'''# Colab only: install zfbook (code and checkpoints). Does nothing elsewhere.
import sys

if "google.colab" in sys.modules:
    import os, subprocess
    if not os.path.isdir("/content/zfbook"):
        subprocess.run(["git", "clone", "--depth", "1", "{url}", "/content/zfbook"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "/content/zfbook"], check=True)
    sys.path.insert(0, "/content/zfbook")
    os.chdir("/content/zfbook/book")'''


def colab_cell():
    """The Colab cell as a notebook cell, tagged ``remove-cell``: it is not shown in the
    HTML book, where it would only distract."""
    import nbformat

    return nbformat.v4.new_code_cell(colab_cell_source(), metadata={"tags": ["remove-cell"]})


def new_chapter(path: Path, title: str) -> None:
    """Write a chapter skeleton: title block, Colab cell, body, the closing sections."""
    import nbformat

    if path.exists():
        raise FileExistsError(f"{path} exists; refusing to overwrite it")
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    nb = nbformat.v4.new_notebook()
    nb.metadata.update({
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    nb.cells = [
        md(f"# {title}\n\n**What you will learn:** ...\n\n"
           f"**Reproduces:** Fig. ... of the paper.\n\n"
           f"**Runtime:** about ... s on a 2-core CPU, ... s on a GPU."),
        colab_cell(),
        md("## ..."),
        code(""),
        *[md(f"## {name}\n\n...") for name in CLOSING_SECTIONS],
    ]
    nbformat.write(nb, path)


if __name__ == "__main__":
    if sys.argv[1:2] == ["new"] and len(sys.argv) == 4:
        new_chapter(Path(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) == 1:
        print("\n".join(str(p.relative_to(ROOT)) for p in notebooks()))
    else:
        sys.exit(__doc__)
