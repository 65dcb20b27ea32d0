"""The book's own Sphinx extension (``sphinx.local_extensions`` in _config.yml).

* **Links to the code.** ``[deconv.project](src:zfbook/deconv/projection.py)`` in a chapter links to
  that file in the repository, built from ``repository.url`` and ``repository.branch`` of
  _config.yml (their only home): the MyST URL scheme ``src:``.
* **No frozen progress bars.** A tqdm bar in a saved notebook is only its first state
  (``epoch 1/1:   0%|          | 0/8``): the live widget is gone. Outputs that are nothing
  but such bars are dropped from the pages (tools/execute.py drops them from the saved
  notebooks too).
"""
from __future__ import annotations

import re

from docutils import nodes

#: a tqdm bar as text: "desc:  12%|█▎        | 1/8 [00:01<00:07, 1.0it/s]"
TQDM_BAR = re.compile(r"^[^\n]*\d+%\|[^|\n]*\| *[\d.]+[kMG]?/[\d.?]+[kMG]? \[[^\]\n]*\]\s*$")


def is_progress_bar(text: str) -> bool:
    lines = [line for line in re.split(r"[\r\n]+", text) if line.strip()]
    return bool(lines) and all(TQDM_BAR.match(line) for line in lines)


def _source_scheme(app, config) -> None:
    options = config.html_theme_options or {}
    url = options.get("repository_url", "").rstrip("/")
    branch = options.get("repository_branch", "main") or "main"
    if not url:
        return
    schemes = config.myst_url_schemes or ["http", "https", "mailto"]
    if not isinstance(schemes, dict):     # a list of scheme names
        schemes = {name: None for name in schemes}
    schemes = dict(schemes)
    schemes["src"] = {"url": f"{url}/blob/{branch}/{{{{path}}}}",
                      "title": "{{path}}", "classes": ["zfbook-source"]}
    config.myst_url_schemes = schemes


def _drop_progress_bars(app, doctree, docname) -> None:
    for node in list(doctree.findall(nodes.literal_block)):
        if "output" in node.get("classes", []) and is_progress_bar(node.astext()):
            node.parent.remove(node)


def setup(app):
    app.connect("config-inited", _source_scheme)
    app.connect("doctree-resolved", _drop_progress_bars)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
