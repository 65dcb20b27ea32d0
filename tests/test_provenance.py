"""The appendix's tables of what made the shipped files (zfbook.provenance): against the
shipped data/MANIFEST.json and data/results files, read here straight from the JSON, and
against hand-made manifests and records in a folder of their own ($ZFBOOK_DATA)."""
import json
from pathlib import Path

import pytest

from zfbook import provenance

DATA = Path(__file__).resolve().parent.parent / "data"
SHIPPED = json.loads((DATA / "MANIFEST.json").read_text())
RUN_FILES = [f for f, e in SHIPPED.items() if e.get("format") == "zfbook-results/1"]


def column(tab, header):
    i = tab.header.index(header)
    return [row[i] for row in tab.rows]


def write(folder, manifest, files=()):
    (folder / "results").mkdir(parents=True, exist_ok=True)
    (folder / "MANIFEST.json").write_text(json.dumps(manifest))
    for name, records in dict(files).items():
        (folder / name).write_text(json.dumps({"format": "zfbook-results/1", "records": records}))


def test_results_table_sums_wall_seconds_given_per_command(monkeypatch, tmp_path):
    write(tmp_path, {
        "results/one.json": {"records": 1, "seeds": [0], "wall_seconds": 240},
        "results/two.json": {"records": 2, "seeds": [0, 1], "wall_seconds": [60, 120.0]},
        "results/arms.json": {"records": 3, "seed": 0, "wall_seconds": {"frozen": 30, "scratch": 150}},
        "a.pt": {"preset": "zfnet-mini", "epochs": 2, "test_top1_centre": 50.0,
                 "test_top1_10crop": 51.0, "wall_seconds": [30, 60]}})
    monkeypatch.setenv("ZFBOOK_DATA", str(tmp_path))
    tab = provenance.results_table()
    assert column(tab, "file") == ["`one.json`", "`two.json`", "`arms.json`"]
    assert column(tab, "minutes") == ["4", "3", "3"]
    assert column(tab, "records") == ["1", "2", "3"]
    assert column(provenance.checkpoints_table(), "minutes") == ["1.5"]


def test_results_table_lists_every_shipped_file_of_measurements():
    tab = provenance.results_table()
    want = {f: e for f, e in SHIPPED.items() if f.startswith("results/")}
    assert column(tab, "file") == [f"`{f.split('/')[-1]}`" for f in want]
    flat = lambda v: sum(map(flat, v.values() if isinstance(v, dict) else v)) \
        if isinstance(v, (list, dict)) else v
    assert column(tab, "minutes") == [f"{flat(e['wall_seconds']) / 60:.0f}" for e in want.values()]
