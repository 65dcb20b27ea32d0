"""Vendor MathJax into the book's static files, so that formulas render offline.

    python tools/vendor_mathjax.py [VERSION]      # default: the version in SOURCE.json, or 3

Fetches the npm package ``mathjax@VERSION`` with npm (``npm pack``), copies its single-file
build ``es5/tex-svg-full.js`` (TeX input, SVG output, every TeX extension included; SVG
needs no font files, which matters for a book opened from ``file://``) and the licence to
``_vendor/mathjax/``, and records the package, version, file and sha256 in
``_vendor/mathjax/SOURCE.json``. ``_config.yml`` copies ``_vendor`` to the book's root
(``html_extra_path``: not ``_static``, whose every .js file jupyter-book loads on every page,
which would load MathJax twice) and points Sphinx's ``mathjax_path`` at it;
``tests/test_book.py`` checks the sha256 against SOURCE.json.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEST = ROOT / "_vendor" / "mathjax"
FILE = "es5/tex-svg-full.js"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def vendor(version: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(["npm", "pack", f"mathjax@{version}", "--pack-destination", tmp,
                              "--silent"], check=True, capture_output=True, text=True)
        tgz = Path(tmp) / out.stdout.strip().splitlines()[-1]
        with tarfile.open(tgz) as tar:
            tar.extractall(tmp, filter="data")
        package = Path(tmp) / "package"
        meta = json.loads((package / "package.json").read_text())
        DEST.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(package / FILE, DEST / Path(FILE).name)
        shutil.copyfile(package / "LICENSE", DEST / "LICENSE")
    record = {"package": "mathjax", "registry": "npm", "version": meta["version"],
              "file": FILE, "sha256": sha256(DEST / Path(FILE).name),
              "command": f"python tools/vendor_mathjax.py {version}"}
    (DEST / "SOURCE.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


if __name__ == "__main__":
    source = DEST / "SOURCE.json"
    default = json.loads(source.read_text())["version"] if source.is_file() else "3"
    print(json.dumps(vendor(sys.argv[1] if len(sys.argv) > 1 else default), indent=2))
