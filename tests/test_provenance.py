"""The appendix's tables of what made the shipped files (zfbook.provenance): against the
shipped data/MANIFEST.json and data/results files, read here straight from the JSON, and
against hand-made manifests and records in a folder of their own ($ZFBOOK_DATA)."""
import json
import statistics
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


@pytest.mark.parametrize("file", RUN_FILES)
def test_runs_table_lists_each_shipped_run(file):
    records = json.loads((DATA / file).read_text())["records"]
    tab = provenance.runs_table(file)
    assert tab.name == f"numbers-{file.split('/')[-1][:-5]}-runs"
    assert len(tab.rows) == len(records)
    assert column(tab, "run") == [f"`{r['name']}`" for r in records]
    assert column(tab, "seed") == [str(r["seed"]) for r in records]
    assert column(tab, "test top-1") == [f"{r['test_top1_centre']:.2f}%" for r in records]
    assert column(tab, "threads") == [str(r["threads"]) for r in records]
    assert column(tab, "minutes") == [f"{r['seconds'] / 60:.1f}" for r in records]
    assert column(tab, "revision") == [f"`{r['code_revision'][:7]}`" for r in records]
    assert column(tab, "s / epoch") == [
        f"{statistics.median([h['seconds'] for h in r['history']]):.0f}" for r in records]
    assert column(tab, "epochs") == [f"{len(r['history'])} of {r['config']['epochs']}" for r in records]
    # the record's own flag where it has one (older records: short of the limit is a plateau)
    assert column(tab, "stopped at") == [
        "plateau" if r.get("stopped_at_plateau", r["epochs"] < r["config"]["epochs"]) else "limit"
        for r in records]
    cuts = lambda h: [a["epoch"] for a, b in zip(h, h[1:]) if a["lr"] / b["lr"] > 5]  # ×0.1 each
    assert column(tab, "lr cut after") == [", ".join(map(str, cuts(r["history"]))) or "none"
                                           for r in records]
    gain = lambda h: f"{h[-1]['val_top1'] - h[-min(3, len(h))]['val_top1']:+.2f}" if len(h) > 1 else "–"
    assert column(tab, "last 3 epochs") == [gain(r["history"]) for r in records]


def test_runs_table_lists_the_runs_a_caller_selects():
    records = json.loads((DATA / "results/ablation.json").read_text())["records"]
    tab = provenance.runs_table("results/ablation.json", where=lambda r: r["variant"] != "baseline",
                                name="numbers-ablation-variants", caption="Variants.")
    assert column(tab, "run") == [f"`{r['name']}`" for r in records if r["variant"] != "baseline"]
    assert "`zfnet-mini`" not in column(tab, "run") and len(tab.rows) < len(records)
    assert (tab.name, tab.caption) == ("numbers-ablation-variants", "Variants.")
    with pytest.raises(ValueError, match="no run of results/ablation.json is selected"):
        provenance.runs_table("results/ablation.json", where=lambda r: False)


def test_runs_table_refuses_a_file_without_runs_naming_those_with():
    with pytest.raises(ValueError) as e:
        provenance.runs_table("results/probes.json")
    assert all(f in str(e.value) for f in RUN_FILES) and len(str(e.value).splitlines()) == 1


def test_runs_table_on_hand_made_records(monkeypatch, tmp_path):
    def rec(name, seed, vals, lrs, limit, seconds, stop_patience=None, rev="abcdef0123456789"):
        hist = [{"epoch": i + 1, "val_top1": v, "lr": lr, "train_loss": 1.0, "seconds": s}
                for i, (v, lr, s) in enumerate(zip(vals, lrs, seconds))]
        return {"name": name, "seed": seed, "epochs": len(hist), "history": hist,
                "config": {"epochs": limit, "anneal": [2], "stop_patience": stop_patience},
                "test_top1_centre": 81.234, "seconds": 150.0, "threads": 1, "code_revision": rev}
    # annealed after epoch 2, best at epoch 3, 2 epochs without better: its plateau at 5 of 9
    stopped = rec("zfnet-mini", 0, [10, 20, 50, 49, 48.5], [0.1, 0.1, 0.01, 0.01, 0.01], 9,
                  [10, 30, 20, 40, 50], stop_patience=2)
    full = rec("zfnet-mini", 1, [10, 20, 30, 31], [0.1, 0.1, 0.01, 0.001], 4, [1, 2, 3, 4],
               rev="0123456789abcdef+dirty")
    write(tmp_path, {"results/runs.json": {"format": "zfbook-results/1", "records": 2}},
          {"results/runs.json": [stopped, full]})
    monkeypatch.setenv("ZFBOOK_DATA", str(tmp_path))
    tab = provenance.runs_table("results/runs.json")
    assert tab.rows == [
        ["`zfnet-mini`", "0", "5 of 9", "plateau", "2", "-1.50", "81.23%", "30", "2.5", "1", "`abcdef0`"],
        ["`zfnet-mini`", "1", "4 of 4", "limit", "2, 3", "+11.00", "81.23%", "2", "2.5", "1",
         "`0123456+dirty`"]]
    assert "runs.json" in tab.caption and tab.name == "numbers-runs-runs"
