"""The book's chapters, read from _toc.yml, and the skeleton of a new chapter.

    python tools/chapters.py                      # list every chapter notebook, in order
    python tools/chapters.py new book/x.ipynb "Title"   # write a chapter skeleton
    python tools/chapters.py set-repository URL   # move the book to another repository

The repository URL is read from _config.yml (repository.url), its only home: the Colab
cell that opens every chapter is generated from it, the launch buttons and the `src:` links
to the code follow it (tools/book_ext.py), and tests/test_book.py checks it.
`set-repository` rewrites repository.url and every chapter's Colab cell.

The conventions the skeleton follows are in book/WRITING.md.
"""
from __future__ import annotations

import re
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


def figure(name: str, caption: str, alt: str) -> dict:
    """Cell metadata that makes a cell's image output a numbered, captioned figure.

    ``name`` is unique in the book (``"<chapter>-<what>"``) and referenced from the prose as
    ``{numref}`name```; ``caption`` is Markdown (one paragraph); ``alt`` says what the image
    shows, for readers who cannot see it. Put it in ``cell.metadata`` (book/WRITING.md).
    """
    return {"mystnb": {"figure": {"name": name, "caption": caption},
                       "image": {"alt": alt}}}


def tagged(cell, *tags):
    """``cell`` with cell tags added (``hide-input``, ``remove-input``, ``nbval-ignore-output``:
    book/WRITING.md, section 5); for scripts that write a chapter."""
    cell.metadata.setdefault("tags", []).extend(tags)
    return cell


def as_figure(cell, name: str, caption: str, alt: str):
    """``cell`` whose image output is a numbered, captioned figure (:func:`figure`)."""
    cell.metadata.update(figure(name, caption, alt))
    return cell


def new_chapter(path: Path, title: str) -> None:
    """Write a chapter skeleton that follows book/WRITING.md: the title block, the Colab
    cell, a body with a table, a glued number and a numbered figure, and the closing
    sections with the paper-vs-ours table."""
    import nbformat

    if path.exists():
        raise FileExistsError(f"{path} exists; refusing to overwrite it")
    stem = path.stem.replace("_", "-")
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    nb = nbformat.v4.new_notebook()
    nb.metadata.update({
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    nb.cells = [
        md(f"# {title}\n\n**What you will learn:** ...\n\n"
           f"**Reproduces:** Fig. ... of {{cite:t}}`zeiler2014`.\n\n"
           f"**Runtime:** about ... s on a 2-core CPU, ... s on a GPU."),
        colab_cell(),
        md("## ...\n\n"
           "Prose in our own words. Link the chapters it builds on, e.g. "
           "[the deconvnet](deconvnet.ipynb), and the code it introduces, e.g. "
           "[`deconv.project`](src:zfbook/deconv/projection.py)."),
        code("%matplotlib inline\n"
             "import torch\n"
             "import zfbook\n"
             "from zfbook import plot\n"
             "from zfbook.display import glue, paper_vs_ours, table\n\n"
             "torch.manual_seed(0)"),
        code("# a measurement: show it as a table, keep the value for the prose\n"
             "accuracy = 0.5\n"
             "glue(\"accuracy\", 100 * accuracy)\n"
             "table([(\"accuracy\", f\"{100 * accuracy:.1f}%\")], [\"\", \"value\"],\n"
             f"      caption=\"What the table shows.\", name=\"{stem}-example\")"),
        md(f"The accuracy is {{glue:text}}`accuracy:.1f`% ({{numref}}`{stem}-example`). "
           f"{{numref}}`{stem}-figure` shows ..."),
        code("from matplotlib.figure import Figure\n\n"
             "fig = Figure(figsize=(6.8, 3), layout=\"constrained\")\n"
             "fig.subplots().plot([0, 1], [0, 1])\n"
             "fig",
             metadata=figure(f"{stem}-figure", "What the figure shows, in one sentence.",
                             "A line rising from the bottom left to the top right.")),
        *[md(f"## {name}\n\n...") for name in CLOSING_SECTIONS[:-1]],
        md(f"## {CLOSING_SECTIONS[-1]}\n\n..."),
        code("paper_vs_ours([\n"
             "    (\"what\", \"the paper's number (Fig. ...)\", f\"{100 * accuracy:.1f}%\"),\n"
             f"], name=\"{stem}-paper-vs-ours\")"),
    ]
    nbformat.write(nb, path)


def set_repository(url: str, root: Path = ROOT) -> list[Path]:
    """Point the book at another repository: repository.url in _config.yml and the Colab
    cell of every chapter. Returns the notebooks rewritten."""
    import nbformat

    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise ValueError(f"{url!r}: expected https://github.com/OWNER/REPO")
    old = repository_url(root)
    text = (root / "_config.yml").read_text()
    text = re.sub(r"(?m)^(  url: ).*$", lambda m: m.group(1) + url, text, count=1)
    (root / "_config.yml").write_text(text)
    changed = []
    for path in notebooks(root):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code" and cell.source == colab_cell_source(old):
                cell.source = colab_cell_source(url)
                nbformat.write(nb, path)
                changed.append(path)
                break
    return changed


if __name__ == "__main__":
    if sys.argv[1:2] == ["new"] and len(sys.argv) == 4:
        new_chapter(Path(sys.argv[2]), sys.argv[3])
    elif sys.argv[1:2] == ["set-repository"] and len(sys.argv) == 3:
        for path in set_repository(sys.argv[2]):
            print("rewrote the Colab cell of", path.relative_to(ROOT))
    elif len(sys.argv) == 1:
        print("\n".join(str(p.relative_to(ROOT)) for p in notebooks()))
    else:
        sys.exit(__doc__)
