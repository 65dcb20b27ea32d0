"""The records of a run (:class:`Records`, ``results.json``), their summaries, the shipped
records and the paper's numbers to set them beside."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

# ------------------------------------------------------------------ records
class Records:
    """``results.json``: a list of records, one per line, rewritten atomically on every add.

    ``key`` names the fields that identify a record (``arm, shots, draw`` …); ``same`` those
    that must agree for an existing record to count as done (checkpoint, dataset, seed,
    recipe). A file holds the records of one checkpoint, dataset and seed
    (:data:`IDENTITY`), so its means never mix two models: a record of another one, or with
    the same key and a different recipe, is an error unless ``force``, which starts the file
    over (the old file stays until the first new record replaces it). A file that is not a
    list of such records is refused before anything is added to it.
    """

    #: the fields every record of one file shares
    IDENTITY = ("dataset", "checkpoint_sha256", "seed")

    def __init__(self, path, key: Sequence[str], same: Sequence[str], force: bool = False):
        self.path, self.key, self.same, self.force = Path(path), tuple(key), tuple(same), force
        self.records: list[dict] = []
        if self.path.is_file():
            self.records = self._read()
        self.dropped = len(self.records) if force else 0
        if force:
            self.records = []
            if self.dropped:
                import sys
                print(f"--force: starting {self.path} over (it held {self.dropped} records); the old file "
                      "stays until the first new record replaces it", file=sys.stderr, flush=True)

    def _read(self) -> list[dict]:
        need = self.key + tuple(k for k in self.IDENTITY if k in self.same) + ("top1",)
        try:
            records = json.loads(self.path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            records = None
        if not isinstance(records, list) or not all(isinstance(r, dict) and all(k in r for k in need)
                                                    for r in records):
            raise ValueError(f"{self.path} is not a zfbook results file of this command (a JSON list of "
                             f"records with {', '.join(need)}); move it away or choose another --out")
        return records

    def _k(self, rec) -> tuple:
        return tuple(rec.get(k) for k in self.key)

    def done(self, want: dict) -> bool:
        """Whether a record matching ``want`` (its key and ``same`` fields) exists."""
        for rec in self.records:   # every record first: a file of several checkpoints is not one checkpoint's
            other = [k for k in self.IDENTITY if k in self.same and rec.get(k) != want.get(k)]
            if other:
                names = {"dataset": f"dataset ({rec.get('dataset')})", "seed": f"seed ({rec.get('seed')})",
                         "checkpoint_sha256": f"checkpoint ({rec.get('checkpoint') or '?'}, sha256 "
                                              f"{str(rec.get('checkpoint_sha256'))[:12]}…)"}
                raise ValueError(f"{self.path} holds records of another {', '.join(names[k] for k in other)}; "
                                 "use another --out, or --force to start the file over")
        for rec in self.records:
            if self._k(rec) != self._k(want):
                continue
            diff = [k for k in self.same if rec.get(k) != want.get(k)]
            if not diff:
                return True
            raise ValueError(f"{self.path} already holds a record for "
                             f"{', '.join(f'{k}={v}' for k, v in zip(self.key, self._k(rec)))} with a different "
                             f"{', '.join(diff)}; use another --out, or --force to start the file over")
        return False

    def add(self, rec: dict) -> None:
        self.records = [r for r in self.records if self._k(r) != self._k(rec)] + [rec]
        self._write()

    def sort(self, key: Callable) -> None:
        """Reorder the records (and the file) by ``key``."""
        self.records.sort(key=key)
        self._write()

    def _write(self) -> None:
        from ..checkpoint import write_text_atomic
        write_text_atomic(self.path, "[\n" + ",\n".join(json.dumps(r, separators=(",", ":"))
                                                        for r in self.records) + "\n]\n")


def _jsonable(d: dict) -> dict:
    return json.loads(json.dumps(d))


def summarize(records, by=("arm", "shots"), **where) -> dict:
    """``{key: (mean top1, std top1, n)}`` over draws, grouping ``records`` by the ``by``
    fields, keeping those whose fields equal ``where`` (std: population, 0 for one draw)."""
    groups: dict = {}
    for r in records:
        if all(r.get(k) == v for k, v in where.items()):
            groups.setdefault(tuple(r[k] for k in by), []).append(r["top1"])
    return {k: (float(np.mean(v)), float(np.std(v)), len(v)) for k, v in sorted(groups.items())}


def load_records(name: str) -> list:
    """Shipped records: ``data/results/<name>.json`` (``transfer`` or ``probes``)."""
    from ..checkpoint import data_dir
    return json.loads((data_dir() / "results" / f"{name}.json").read_text())


# ------------------------------------------------------------------ the paper's numbers
#: Table 4, Caltech-101, mean per-class accuracy % at 15 / 30 training images per class
PAPER_TABLE4 = {"pretrained": {15: 83.8, 30: 86.5}, "scratch": {15: 22.8, 30: 46.5}}
#: Table 5 (and Fig. 9), Caltech-256, accuracy % at 15 / 30 / 45 / 60 per class; "bo2013" the
#: previous best (Bo et al. 2013)
PAPER_TABLE5 = {"pretrained": {15: 65.7, 30: 70.6, 45: 72.7, 60: 74.2},
                "scratch": {15: 9.0, 30: 22.5, 45: 31.2, 60: 38.8},
                "bo2013": {15: 40.5, 30: 48.0, 45: 51.9, 60: 55.2}}
#: Table 7: (classifier, layer) → (Caltech-101 at 30 per class, Caltech-256 at 60 per class); no layer 6
PAPER_TABLE7 = {("svm", "conv1"): (44.8, 24.6), ("svm", "conv2"): (66.2, 39.6), ("svm", "conv3"): (72.3, 46.0),
                ("svm", "conv4"): (76.6, 51.3), ("svm", "conv5"): (86.2, 65.6), ("svm", "fc7"): (85.5, 71.7),
                ("softmax", "conv5"): (82.9, 65.7), ("softmax", "fc7"): (85.4, 72.6)}
