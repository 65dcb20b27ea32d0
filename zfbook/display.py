"""What a chapter shows besides figures: tables, numbers glued into the prose, Markdown.

The book is read in Jupyter, in Colab and as a static HTML book (jupyter-book, myst-nb);
each helper here renders correctly in all three (book/WRITING.md shows how to use them).

* :func:`table` turns rows into a real table. Its output carries two views: ``text/html``
  (a plain ``<table>`` with a ``<caption>``, shown by Jupyter and Colab) and
  ``text/markdown`` (a MyST ``{table}`` directive, which the book prefers: a themed,
  numbered table that can be cross-referenced by its ``name``).
* :func:`paper_vs_ours` is the table every chapter closes with: what the paper reported
  next to what we measured.
* :func:`glue` stores a value for the prose (``{glue:text}`name```), the way myst-nb's
  ``glue(..., display=False)`` does, without needing myst-nb in the kernel (Colab has none).
* :func:`md` shows a Markdown string, e.g. a sentence built from measured numbers.
* :func:`series` joins words for a sentence: ``a, b and c``.
"""
from __future__ import annotations

import html
from typing import Any, Iterable, Sequence

__all__ = ["Table", "table", "paper_vs_ours", "glue", "md", "series"]

#: the mimetype prefix myst-nb reads glued values from (myst_nb.ext.glue.GLUE_PREFIX)
GLUE_PREFIX = "application/papermill.record/"


def _text(value: Any) -> str:
    return "" if value is None else str(value)


class Table:
    """Rows shown as a table; see :func:`table`."""

    def __init__(self, rows: Iterable[Sequence[Any]], header: Sequence[Any],
                 caption: str | None = None, name: str | None = None,
                 align: str | Sequence[str] | None = None):
        self.header = [_text(h) for h in header]
        self.rows = [[_text(v) for v in row] for row in rows]
        for row in self.rows:
            if len(row) != len(self.header):
                raise ValueError(f"a row has {len(row)} cells, the header {len(self.header)}: "
                                 f"{row}")
        if name is not None and not name.replace("-", "").isalnum():
            raise ValueError(f"name {name!r}: use letters, digits and '-' only")
        self.caption, self.name = caption, name
        n = len(self.header)
        if align is None:   # text left, everything after the first column right
            align = ["left"] + ["right"] * (n - 1)
        elif isinstance(align, str):
            align = [align] * n
        if len(align) != n or not set(align) <= {"left", "right", "center"}:
            raise ValueError(f"align: one of 'left', 'right', 'center' per column ({n})")
        self.align = list(align)

    # -------------------------------------------------------------- Jupyter, Colab
    def _repr_html_(self) -> str:
        e = html.escape
        cell = lambda tag, v, a: f'<{tag} style="text-align:{a}">{e(v)}</{tag}>'
        head = "".join(cell("th", h, a) for h, a in zip(self.header, self.align))
        body = "".join("<tr>" + "".join(cell("td", v, a) for v, a in zip(row, self.align))
                       + "</tr>" for row in self.rows)
        caption = f"<caption>{e(self.caption)}</caption>" if self.caption else ""
        return (f'<table class="zfbook-table">{caption}<thead><tr>{head}</tr></thead>'
                f"<tbody>{body}</tbody></table>")

    # ------------------------------------------------------------------- the book
    def _repr_markdown_(self) -> str:
        esc = lambda v: v.replace("|", r"\|").replace("\n", " ")
        rule = {"left": ":--", "right": "--:", "center": ":-:"}
        lines = ["| " + " | ".join(esc(h) for h in self.header) + " |",
                 "|" + "|".join(rule[a] for a in self.align) + "|"]
        lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in self.rows]
        if not (self.caption or self.name):
            return "\n".join(lines)
        options = [f":name: {self.name}"] if self.name else []
        return "\n".join([f":::{{table}} {self.caption or ''}".rstrip(), *options, "", *lines,
                          ":::"])

    def __repr__(self) -> str:
        widths = [max(len(r[i]) for r in [self.header, *self.rows])
                  for i in range(len(self.header))]
        fmt = lambda row: "  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip()
        lines = ([self.caption] if self.caption else []) + [fmt(self.header)]
        return "\n".join(lines + [fmt(r) for r in self.rows])


def table(rows: Iterable[Sequence[Any]], header: Sequence[Any], *, caption: str | None = None,
          name: str | None = None, align: str | Sequence[str] | None = None) -> Table:
    """Rows as a table that fits the page: return it as a cell's last value.

    ``rows`` are sequences of cells (anything; shown with ``str``), ``header`` names the
    columns. With a ``caption`` the book numbers the table ("Table 3.1"); a ``name``
    (unique in the whole book, e.g. ``"training-recipe"``) lets the prose refer to it with
    ``{numref}`name```. Cells are plain text: Markdown or ``$math$`` in them is shown as
    typed in Jupyter and rendered in the book. By default the first column is left-aligned
    and the others right-aligned (numbers); ``align`` overrides that.
    """
    return Table(rows, header, caption=caption, name=name, align=align)


def paper_vs_ours(rows: Iterable[Sequence[Any]], *, name: str,
                  caption: str = "What the paper reported and what we measured.") -> Table:
    """The closing table of a chapter: rows of (what, the paper's number, ours).

    The paper's numbers are typed (with their figure or table); ours are formatted from
    values the chapter computed. ``name`` is ``"<chapter>-paper-vs-ours"``.
    """
    return Table(rows, ["", "paper", "measured here"], caption=caption, name=name,
                 align="left")


def glue(name: str, value: Any) -> None:
    """Store ``value`` for the prose, as myst-nb's ``glue(name, value, display=False)``.

    In a Markdown cell below, ``{glue:text}`name``` pastes it, and
    ``{glue:text}`name:.1f``` formats a number. Nothing is shown where the cell runs.
    Store the number itself and format it in the prose, or store a formatted string.
    """
    from IPython.core.formatters import format_display_data
    from IPython.display import display

    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()  # a NumPy/torch scalar: its repr is not a number myst-nb can format
    bundle, metadata = format_display_data(value)
    metadata = dict(metadata or {})
    metadata["scrapbook"] = {"name": name, "mime_prefix": GLUE_PREFIX}
    display({GLUE_PREFIX + k: v for k, v in bundle.items()}, raw=True, metadata=metadata)


def md(text: str):
    """Show ``text`` as Markdown (a sentence whose numbers the cell computed)."""
    from IPython.display import Markdown

    return Markdown(text)


def series(items: Iterable[Any], conjunction: str = "and") -> str:
    """Words joined as a sentence lists them: ``"a"``, ``"a and b"``, ``"a, b and c"``."""
    words = [_text(i) for i in items]
    if len(words) < 2:
        return "".join(words)
    return f"{', '.join(words[:-1])} {conjunction} {words[-1]}"
