"""tools/nbval_floats.py: nbval forgives only the far digits of full-precision floats."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from nbval_floats import close, significant_digits  # noqa: E402


@pytest.mark.parametrize("number, digits", [
    ("0.0310", 3), ("-12.5", 3), ("0.31409472301584984", 17), ("1.5e-07", 2),
    ("100.0", 4),
])
def test_significant_digits(number, digits):
    assert significant_digits(number) == digits


@pytest.mark.parametrize("a, b", [
    ("0.31409472301584984", "0.31409472301584973"),       # float64, seen between CPUs
    ("0.7786932265142268", "0.7786932305236612"),         # float32 through float64
    ("gap 0.19100135927520717 after", "gap 0.19100042433190573 after"),
    ("[0.12309044205679652, 2]", "[0.12309042472065186, 2]"),
])
def test_far_digits_of_long_floats_are_forgiven(a, b):
    assert close(a, b)


@pytest.mark.parametrize("a, b", [
    ("largest difference 0.50 points", "largest difference 0.25 points"),  # printed
    ("RMS 0.135", "RMS 0.136"),                            # a reader sees these digits
    ("0.1353215577848473", "0.1354215577848473"),          # 7e-4 apart: beyond RTOL
    ("0.31409472301584984 s", "0.31409472301584984 m"),    # the words differ
    ("0.31409472301584984", "0.31409472301584984, 1.0"),   # another number
    ("2.52", "2.5200000001"),                              # one side is short
])
def test_everything_else_is_compared_exactly(a, b):
    assert not close(a, b)


def _run_nbval(tmp_path, printed: str, committed: str, plugin=True) -> int:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(f"print({printed!r})", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=committed + "\n")]
    nb.cells = [cell]
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         *(["-p", "tools.nbval_floats"] if plugin else []),
         "--nbval", "--nbval-current-env", str(path)],
        cwd=ROOT, capture_output=True, text=True).returncode


def test_nbval_with_the_plugin_passes_far_digits_and_fails_printed_ones(tmp_path):
    assert _run_nbval(tmp_path, "x 0.31409472301584973", "x 0.31409472301584984") == 0
    assert _run_nbval(tmp_path, "x 0.25", "x 0.50") == 1
    # and without it nbval fails the far digits: the plugin is what forgives them
    assert _run_nbval(tmp_path, "x 0.31409472301584973", "x 0.31409472301584984",
                      plugin=False) == 1
