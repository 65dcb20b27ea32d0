"""Keep the bookkeeping out of the chapters' prose and machine folders off the pages.

    python tools/bookkeeping.py                   # every chapter in _toc.yml, and data/
    python tools/bookkeeping.py book/X.ipynb ...  # these notebooks or record files only

A learner reads findings; how the numbers were made (records, threads, kinds of CPU,
bit-for-bit checks, resuming) lives in one appendix page, "How the numbers were made"
(``book/appendix_numbers.ipynb``), and the command-line reference beside it. The checks:

* the **Markdown** of every other page uses none of :data:`WORDS` (case-insensitive,
  whole words; a link's target, a MyST role's target such as ``{numref}`name``` and a
  label line ``(name)=`` are not prose and are skipped);
* no **cell output** of any page (the appendix pages too) shows an absolute folder of the
  machine that made it (:data:`FOLDERS`: ``/work/``, ``/tmp/``, ``/root/``, ``/home/``);
* no ``command`` (or ``trained_by``) field of ``data/MANIFEST.json`` or of a record in
  ``data/results/*.json`` holds one either.

Each finding is printed as ``FILE:CELL:LINE: WORD``: ``CELL`` is the cell's index in the
notebook (``nb.cells[CELL]``), ``LINE`` the line in the cell's Markdown, or ``out N`` for
line N of its outputs; for a record file, ``CELL`` names the entry and ``LINE`` the field.
Exit status 0 when nothing is found, 1 when something is, 2 for a bad argument.
"""
from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from chapters import notebooks  # noqa: E402

#: the words a chapter's prose leaves to the appendix (case-insensitive, whole words)
WORDS = ("record", "records", "sha256", "bit for bit", "bit-for-bit", "bit-identical",
         "thread", "threads", "kind of CPU", "kinds of CPU", "resume", "resumes", "resumed",
         "MANIFEST", "--jobs", "nbval")
#: absolute folders of a machine, which no page or record shows
FOLDERS = ("/work/", "/tmp/", "/root/", "/home/")
#: the pages whose prose is the bookkeeping
APPENDIX = ("book/appendix_numbers.ipynb", "book/appendix_cli.ipynb")
#: the fields of a record or manifest entry that hold a command
COMMAND_FIELDS = ("command", "trained_by")

_WORD = re.compile(r"(?<![\w-])(" + "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in WORDS)
                   + r")(?![\w-])", re.I)
_FOLDER = re.compile(r"(?<![\w.~-])(" + "|".join(map(re.escape, FOLDERS)) + ")")
_NOT_PROSE = [re.compile(p) for p in (
    r"\]\([^)\s]*\)",                 # a link's target: [text](target)
    r"\{[\w:-]+\}`[^`]*`",            # a MyST role: {numref}`name`, {glue:text}`name`
    r"(?m)^\s*\([\w-]+\)=\s*$",       # a label line: (name)=
    r"data:[\w/+.-]+;base64,[\w+/=]+",  # an inline image
)]


@dataclass(frozen=True)
class Finding:
    file: str
    cell: str
    line: str
    word: str

    def __str__(self) -> str:
        return f"{self.file}:{self.cell}:{self.line}: {self.word}"


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _blank(text: str) -> str:
    """``text`` with what is not prose replaced by spaces (line numbers stay)."""
    for pattern in _NOT_PROSE:
        text = pattern.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), text)
    return text


def prose_words(text: str) -> list[tuple[int, str]]:
    """``(line, word)`` for every bookkeeping word in Markdown ``text`` (lines from 1)."""
    text = _blank(text)
    return [(text.count("\n", 0, m.start()) + 1, " ".join(m.group(1).split()))
            for m in _WORD.finditer(text)]


def machine_folders(text: str) -> list[tuple[int, str]]:
    """``(line, folder)`` for every absolute machine folder in ``text`` (lines from 1)."""
    text = _NOT_PROSE[-1].sub("", text)  # base64 may spell anything
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in _FOLDER.finditer(text)]


def _output_text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif out.get("output_type") == "error":
            parts.append("\n".join(out.get("traceback", [])))
        for mime, value in out.get("data", {}).items():
            if mime.startswith("text/") or mime.endswith("json"):
                parts.append(value if isinstance(value, str) else json.dumps(value))
    return "\n".join(p.rstrip("\n") for p in parts)


def check_notebook(path: Path, prose: bool | None = None) -> list[Finding]:
    """The findings in one notebook. ``prose``: check its Markdown for :data:`WORDS`
    (default: unless it is an :data:`APPENDIX` page)."""
    path = Path(path)
    if prose is None:
        prose = _shown(path) not in APPENDIX
    nb = nbformat.read(path, as_version=4)
    found = []
    for i, cell in enumerate(nb.cells):
        if prose and cell.cell_type == "markdown":
            found += [Finding(_shown(path), str(i), str(n), w) for n, w in prose_words(cell.source)]
        if cell.cell_type == "code":
            found += [Finding(_shown(path), str(i), f"out {n}", f)
                      for n, f in machine_folders(_output_text(cell))]
    return found


def _commands(entry: dict):
    for field in COMMAND_FIELDS:
        value = entry.get(field)
        for command in [value] if isinstance(value, str) else value or []:
            yield field, command


def check_records(path: Path) -> list[Finding]:
    """Absolute folders in the command fields of the manifest or of a records file."""
    path = Path(path)
    data = json.loads(path.read_text())
    if isinstance(data, dict) and "records" in data:
        entries = {f"record {i}": r for i, r in enumerate(data["records"])}
    elif isinstance(data, list):
        entries = {f"record {i}": r for i, r in enumerate(data)}
    else:  # the manifest: file name -> entry
        entries = {str(k): v for k, v in data.items() if isinstance(v, dict)}
    return [Finding(_shown(path), name, field, folder)
            for name, entry in entries.items() for field, command in _commands(entry)
            for _, folder in machine_folders(command)]


def record_files(root: Path = ROOT) -> list[Path]:
    return [root / "data" / "MANIFEST.json", *sorted((root / "data" / "results").glob("*.json"))]


def check(paths=None) -> list[Finding]:
    """Every finding in ``paths`` (notebooks and record files), or in the whole book."""
    if not paths:
        paths = [*notebooks(), *record_files()]
    found = []
    for p in map(Path, paths):
        found += check_notebook(p) if p.suffix == ".ipynb" else check_records(p)
    return found


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if set(args) & {"-h", "--help"}:
        print(__doc__)
        return 0
    for a in args:
        if a.startswith("-"):
            print(f"error: unknown option {a}; the arguments are notebooks (.ipynb) and "
                  "record files (.json), or none for the whole book", file=sys.stderr)
            return 2
    for a in args:
        p = Path(a)
        if not p.is_file() or p.suffix not in (".ipynb", ".json"):
            print(f"error: {a} is not a notebook (.ipynb) or a record file (.json) that exists",
                  file=sys.stderr)
            return 2
    found = check(args)
    for f in found:
        print(f)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
