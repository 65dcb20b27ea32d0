"""Experiments too heavy for a chapter: several training runs, one JSON record each.

The paper compares networks by training each once on ImageNet (Table 2, Table 3). At our
scale one run per network says little: seeds move the test error by a point or more. This
module trains a list of runs — each a :class:`Spec`: a preset, :class:`~zfbook.train.Config`
overrides and a seed — with :func:`zfbook.train.train`, evaluates each on the embedded test
split, and appends one record per run to ``OUT/results.json``.

Semantics:

* **Where.** Run ``name`` with seed ``S`` trains in ``OUT/<name>-seed<S>/`` (``last.pt``,
  ``history.json``, snapshots). The name is the preset plus every override that differs
  from the preset's recipe (``alexnet-mini-epochs40-anneal32``), so two different recipes
  never share a folder.
* **Resume and skip.** A run with a record in ``results.json`` is skipped; a run folder
  whose ``last.pt`` is short of its epochs is resumed exactly (``train(resume=True)``); a
  finished one is only evaluated. A folder or record made with a different configuration
  is refused, never overwritten (the fields compared are those that change the weights).
* **Records.** Test top-1/top-5 accuracy and error, centre crop and 10 crops (Section 3),
  of the full-precision final weights; the last epoch's train and validation numbers and
  the whole history; the parameter count; training seconds (the history's sum, so a
  resumed run counts every epoch once) and evaluation seconds; the command; the code
  revision (``git rev-parse HEAD``, ``+dirty`` when ``zfbook/`` has uncommitted changes);
  and a sha256 of the final weights (and their dtype: a finished run folder may hold a
  shipped float16 file), so a re-run can be checked bit for bit (training on the CPU is
  deterministic; the record names its thread count, which changed the bits of the transfer
  chapter's scratch runs though not of these), with the PyTorch version: another
  PyTorch build may compute other bits (the shipped checkpoints, made with an earlier build,
  are not reproduced bit for bit by torch 2.14.1+cu130).
* **Atomic.** ``results.json`` is rewritten to a temporary file and renamed after each run,
  so an interrupted experiment loses at most the run in progress, which resumes.

Refuses: unknown presets or Config fields (one line naming the valid ones), a folder or
record from another configuration, a ``results.json`` it did not write, and an ``OUT`` that
is not the command's own or that another command holds (:mod:`zfbook.outputs`: the runner
holds ``OUT`` with a lock file while it runs; each run holds its own folder).
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from . import models
from .checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from .cli import relative_command
from .train import RECIPES, Config, _config_dict, evaluate, plateaued, train, watched

__all__ = ["Spec", "run_name", "grid", "run_experiments", "run_one", "reproduce", "REPRODUCED", "load_results",
           "code_revision", "cpu_kind", "weights_sha256", "plateau", "ending", "summarize", "mean_sd", "RESULTS_FORMAT", "MATCH_FIELDS"]

RESULTS_FORMAT = "zfbook-results/1"
#: Config fields that change the trained weights: a run folder or record must agree on all
MATCH_FIELDS = ("preset", "epochs", "batch_size", "lr", "momentum", "weight_decay", "conv1_weight_decay", "dropout",
                "renorm", "radius", "patience", "anneal", "seed", "data_seed", "dataset", "stop_patience",
                "labels", "train_per_class", "augment")
#: the order in which overrides appear in a run's name
_NAME_ORDER = ("epochs", "anneal", "stop_patience", "lr", "batch_size", "weight_decay", "conv1_weight_decay", "dropout",
               "renorm", "radius", "patience", "train_per_class", "augment")


@dataclass(frozen=True)
class Spec:
    """One run: ``preset`` trained with ``overrides`` (Config fields) from ``seed``."""
    preset: str
    seed: int = 0
    overrides: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return run_name(self.preset, self.overrides)

    def config(self, **extra) -> Config:
        """The run's Config, every recipe field given explicitly (its name stands for the
        recipe's length: resuming its folder trains to it, whatever the checkpoint says)."""
        models.preset(self.preset)
        valid = set(Config.__dataclass_fields__) - {"preset", "seed", "command"}
        for key in self.overrides:
            if key not in valid:
                raise ValueError(f"unknown setting {key!r}; settings are: {', '.join(sorted(valid))}")
        # replace: a copy made with every field given, so none is left to the recipe
        return replace(Config(preset=self.preset, seed=self.seed, **{**self.overrides, **extra}))


def _fmt(value) -> str:
    if isinstance(value, (tuple, list)):
        return "+".join(map(str, value)) or "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


def run_name(preset: str, overrides: dict) -> str:
    """``preset`` plus each override that differs from the preset's recipe and the Config
    defaults, e.g. ``alexnet-mini-epochs40-anneal32``. ``data_seed``, ``snapshots``,
    ``device`` and the like do not appear (the folder adds ``-seed<S>``)."""
    base = Config(preset=preset, dataset=overrides.get("dataset", "embedded"))
    parts = [preset.replace(":", "-")]  # a Table 3 variant: zfnet-mini-no-fc7
    for key in _NAME_ORDER:
        if key in overrides:
            value = overrides[key]
            norm = tuple(sorted(set(int(v) for v in value))) if key == "anneal" else value
            if norm != getattr(base, key):
                parts.append(f"{key.replace('_', '')}{_fmt(norm)}")
    return "-".join(parts)


def grid(presets, seeds, **overrides) -> list[Spec]:
    """Every preset × seed with the same overrides (``None`` values are dropped)."""
    kept = {k: v for k, v in overrides.items() if v is not None}
    return [Spec(p, int(s), dict(kept)) for p in presets for s in seeds]


# ----------------------------------------------------------------------------- provenance
def code_revision(root=None) -> str:
    """``git rev-parse HEAD`` of the repository holding zfbook, ``+dirty`` when ``zfbook/``
    has uncommitted changes; ``unknown`` outside a git checkout."""
    root = Path(root or Path(__file__).resolve().parent.parent)
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=20, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "zfbook"], cwd=root,
                               capture_output=True, text=True, timeout=20, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


#: the instruction-set extensions that choose PyTorch's, oneDNN's and MKL's CPU kernels
_ISA = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni",
        "amx_tile", "amx_bf16", "amx_int8")


def cpu_kind() -> dict:
    """The CPU a run was made on, as far as it chooses the kernels: PyTorch's CPU capability,
    the processor's name and which of a few instruction-set extensions it has. Two CPUs
    with different kernels compute different bits (seen here: a 1-epoch alexnet-mini run
    made on an earlier machine did not reproduce on an AVX-512/AMX Xeon, same torch build
    and threads)."""
    flags, model = set(), platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    return {"capability": torch.backends.cpu.get_cpu_capability(), "model": model,
            "isa": [f for f in _ISA if f in flags]}


def weights_sha256(state: dict) -> str:
    """sha256 over a state dict's tensors (names, dtypes, shapes and bytes, in key order)."""
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


# ----------------------------------------------------------------------------- results file
def load_results(path) -> list[dict]:
    """The records of a results file (``[]`` when it does not exist); a file that is not
    one (not JSON, another format, records without a name and seed) is refused in one line
    that names it, so nothing is ever appended to it."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not a zfbook results file (not valid JSON: {type(e).__name__}); "
                         "move it away or choose another --out") from None
    records = data.get("records") if isinstance(data, dict) and data.get("format") == RESULTS_FORMAT else None
    if not isinstance(records, list) or not all(isinstance(r, dict) and "name" in r and "seed" in r
                                                for r in records):
        raise ValueError(f"{path} is not a zfbook results file (expected format {RESULTS_FORMAT!r} with "
                         "records of runs); move it away or choose another --out")
    return list(records)


def _write_results(path, records) -> None:
    """``results.json`` rewritten atomically (a temporary file, fsync, rename)."""
    from .checkpoint import write_text_atomic
    write_text_atomic(path, json.dumps({"format": RESULTS_FORMAT, "records": records}, indent=1) + "\n")


def _matches(config: dict, cfg: Config) -> list[str]:
    want = _config_dict(cfg)
    return [k for k in MATCH_FIELDS if k in config and config[k] != want[k]]


# ----------------------------------------------------------------------------- running
def _test_split(cfg: Config, data):
    if data is not None and len(data) > 2:
        return data[2]
    from .data.embedded import WORLDS, embedded
    if cfg.dataset not in WORLDS:
        raise ValueError(f"experiments run on an embedded world ({', '.join(WORLDS)}) "
                         "or on data=(train, val, test)")
    return embedded("test", WORLDS[cfg.dataset], cfg.data_seed)


def run_one(spec: Spec, out, *, command: str = "", device: str = "cpu", snapshots=(),
            data=None, progress: bool = False, log=print) -> dict:
    """Train (or resume, or just evaluate) one run in ``out/<name>-seed<S>/`` and return its
    record. ``data``: optional ``(train, val, test)`` sets with uint8 ``.images`` and
    ``.labels`` instead of the embedded dataset (tests)."""
    cfg = spec.config(device=device, snapshots=tuple(snapshots), command=command)
    run_dir = Path(out) / f"{spec.name}-seed{spec.seed}"
    last = run_dir / "last.pt"
    done = 0
    if last.exists():
        ckpt = load_checkpoint(last)
        bad = _matches(ckpt.get("config", {}), cfg)
        if bad:
            raise CheckpointError(f"{run_dir} holds a run with different {', '.join(bad)}; "
                                  "remove it or choose another --out")
        done = ckpt["epoch"]
    stopped = done > 0 and plateaued(ckpt["history"], cfg.anneal, cfg.stop_patience, watched(cfg.labels))
    if done < cfg.epochs and not stopped:
        log(f"{run_dir.name}: training epochs {done + 1}-{cfg.epochs}"
            + (f" (or until its plateau: --stop-patience {cfg.stop_patience})" if cfg.stop_patience else ""))
        train(cfg, run_dir, resume=done > 0, progress=progress,
              data=None if data is None else tuple(data[:2]))
    else:
        log(f"{run_dir.name}: already trained ({done} epochs{', at its plateau' if stopped else ''}); evaluating")
    ckpt = load_checkpoint(last)
    model = model_from_checkpoint(ckpt, str(last))
    test = _test_split(cfg, data)
    t0 = time.perf_counter()
    torch.manual_seed(0)
    centre = evaluate(model, test.images, test.labels, model.preprocess, device=device)
    ten = evaluate(model, test.images, test.labels, model.preprocess, ten_crop=True, device=device)
    eval_seconds = time.perf_counter() - t0
    hist = ckpt["history"]
    h = hist[-1]
    rec = {
        "name": spec.name, "preset": spec.preset, "variant": spec.preset.partition(":")[2] or "baseline",
        "seed": spec.seed, "data_seed": cfg.data_seed,
        "overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in spec.overrides.items()},
        "epochs": ckpt["epoch"], "batch_size": cfg.batch_size, "lr": cfg.lr, "anneal": list(cfg.anneal),
        "stop_patience": cfg.stop_patience,
        "stopped_at_plateau": plateaued(ckpt["history"], cfg.anneal, cfg.stop_patience, watched(cfg.labels)),
        "params": models.count_parameters(model),
        "test_top1_centre": centre["top1"], "test_top5_centre": centre["top5"],
        "test_top1_10crop": ten["top1"], "test_top5_10crop": ten["top5"],
        "test_error_top1_centre": 100.0 - centre["top1"], "test_error_top5_centre": 100.0 - centre["top5"],
        "test_error_top1_10crop": 100.0 - ten["top1"], "test_error_top5_10crop": 100.0 - ten["top5"],
        "test_images": len(test.labels),
        "train_loss": h["train_loss"], "train_top1": h["train_top1"], "train_top5": h.get("train_top5"),
        "val_loss": h.get("val_loss"), "val_top1": h["val_top1"], "val_top5": h["val_top5"],
        "train_seconds": round(sum(e["seconds"] for e in hist), 1), "eval_seconds": round(eval_seconds, 1),
        "seconds": round(sum(e["seconds"] for e in hist) + eval_seconds, 1),
        "threads": torch.get_num_threads(), "torch": torch.__version__, "cpu": cpu_kind(),
        "weights_sha256": weights_sha256(ckpt["model"]),
        "weights_dtype": str(next(v.dtype for v in ckpt["model"].values() if v.is_floating_point())),
        "command": relative_command(command or ckpt.get("config", {}).get("command", "")),
        "trained_by": relative_command(ckpt.get("config", {}).get("command", "")),
        "code_revision": code_revision(),
        "config": {k: v for k, v in ckpt.get("config", {}).items() if k in MATCH_FIELDS},
        "history": hist,
    }
    return rec


#: what :func:`reproduce` compares: the final weights, the per-epoch history (without its
#: timings) and the centre-crop test numbers
REPRODUCED = ("weights_sha256", "history", "test_top1_centre", "test_top5_centre")


def reproduce(record: dict, out, *, data=None, progress: bool = False) -> dict:
    """Re-train one record's run from scratch on the CPU, with the record's thread count (a
    CPU run's bits may depend on it), into ``out``, and compare it with the record: for each
    field of :data:`REPRODUCED`, ``(recorded, again)``; ``"identical"``: all agree. The 10-crop
    numbers are not re-measured: they are a function of the same weights. Bits can only be
    expected to agree with the same PyTorch build on the same kind of CPU: ``"cpu"`` is (the
    record's :func:`cpu_kind`, this one's), ``"same_cpu"`` and ``"same_torch"`` say whether
    they agree (a record made before records named their CPU counts as another CPU).
    ``data``: as for :func:`run_one` (tests)."""
    spec = Spec(record["preset"], record["seed"], record["overrides"])
    if spec.name != record["name"]:
        raise ValueError(f"the record's overrides name the run {spec.name!r}, not {record['name']!r}")
    cfg = spec.config(device="cpu", snapshots=())
    threads = torch.get_num_threads()
    torch.set_num_threads(record["threads"])
    try:
        train(cfg, Path(out), progress=progress, data=None if data is None else tuple(data[:2]))
        ckpt = load_checkpoint(Path(out) / "last.pt")
        model = model_from_checkpoint(ckpt)
        test = _test_split(cfg, data)
        torch.manual_seed(0)  # as run_one
        centre = evaluate(model, test.images, test.labels, model.preprocess, device="cpu")
    finally:
        torch.set_num_threads(threads)
    timeless = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]
    again = {"weights_sha256": weights_sha256(ckpt["model"]), "history": timeless(ckpt["history"]),
             "test_top1_centre": centre["top1"], "test_top5_centre": centre["top5"]}
    pairs = {k: (timeless(record[k]) if k == "history" else record[k], again[k]) for k in REPRODUCED}
    cpu = cpu_kind()
    return {**pairs, "identical": all(a == b for a, b in pairs.values()),
            "cpu": (record.get("cpu"), cpu), "same_cpu": record.get("cpu") == cpu,
            "same_torch": record.get("torch") == torch.__version__}


_WORKER: dict = {}


def _worker_init(out, command, device, snapshots, data) -> None:
    _WORKER.update(out=out, command=command, device=device, snapshots=snapshots, data=data)


def _worker_run(spec: Spec) -> dict:
    w = _WORKER
    return run_one(spec, w["out"], command=w["command"], device=w["device"], snapshots=w["snapshots"],
                   data=w["data"], progress=False, log=lambda line: print(line, flush=True))


def run_experiments(specs, out, *, command: str = "", device: str = "cpu", snapshots=(),
                    data=None, progress: bool = False, log=print, jobs: int = 1) -> list[dict]:
    """Run every spec in order (see the module docstring), appending each record to
    ``out/results.json`` as it finishes. Returns all the file's records. ``jobs`` > 1: the
    runs in that many processes, the cores shared among them (:mod:`zfbook.parallel`; each
    record names its ``threads``), the most expensive first."""
    from . import outputs
    from .parallel import check_jobs, run_parallel
    check_jobs(jobs)
    out = outputs.check_place(out)
    path = out / "results.json"
    specs = list(specs)
    for spec in specs:  # refuse bad names before any training
        spec.config(device=device)
    load_results(path)  # refuse a file that is not ours before anything is made
    with outputs.held(out, outputs.verb_of(command, "experiment"), command, temporary=["results.json"]):
        return _run_specs(specs, out, path, command=command, device=device, snapshots=snapshots, data=data,
                          progress=progress, log=log, jobs=jobs, run_parallel=run_parallel)


def _run_specs(specs, out, path, *, command, device, snapshots, data, progress, log, jobs, run_parallel):
    todo = []
    records = load_results(path)
    for spec in specs:
        have = [r for r in records if r["name"] == spec.name and r["seed"] == spec.seed]
        if have:
            bad = _matches(have[0].get("config", {}), spec.config(device=device))
            if bad:
                raise ValueError(f"{path} already has a {spec.name} seed {spec.seed} record with "
                                 f"different {', '.join(bad)}")
            log(f"{spec.name}-seed{spec.seed}: recorded; skipped")
        else:
            todo.append(spec)

    def record(spec, rec):
        _write_results(path, load_results(path) + [rec])
        log(f"{spec.name}-seed{spec.seed}: test top-1 {rec['test_top1_centre']:.2f}% centre, "
            f"{rec['test_top1_10crop']:.2f}% 10 crops; {rec['train_seconds']:.0f} s training")

    if jobs == 1:
        for spec in todo:
            record(spec, run_one(spec, out, command=command, device=device, snapshots=snapshots, data=data,
                                 progress=progress, log=log))
    else:
        cost = lambda s: -s.config(device=device).epochs * models.macs(models.build(s.preset, 10))
        for spec, rec in run_parallel(_worker_run, sorted(todo, key=cost), jobs, initializer=_worker_init,
                                      initargs=(out, command, device, tuple(snapshots), data)):
            record(spec, rec)
        order = {(s.name, s.seed): i for i, s in enumerate(specs)}  # as one process writes them
        _write_results(path, sorted(load_results(path), key=lambda r: order.get((r["name"], r["seed"]), -1)))
    return load_results(path)


def plateau(history, last: int = 3) -> dict:
    """How flat the end of a run is, from its history: over the ``last`` epochs, the
    relative drop of the training loss (first − last) / first and the gain of the validation
    top-1 (last − first, in points). Numbers near 0 mean the run had reached its plateau."""
    tail = list(history)[-last:]
    if len(tail) < 2:
        raise ValueError(f"need at least 2 epochs of history, got {len(tail)}")
    first, end = tail[0]["train_loss"], tail[-1]["train_loss"]
    return {"epochs": [tail[0]["epoch"], tail[-1]["epoch"]],
            "train_loss_drop": (first - end) / first,
            "val_top1_gain": tail[-1]["val_top1"] - tail[0]["val_top1"]}


def ending(record: dict) -> dict:
    """How one record's run ended. The paper trains until the validation error stops falling
    (Section 3); a run with ``stop_patience`` does the same, and a record says where it stopped:

    * ``epochs``: the epochs trained; ``limit``: the recipe's most (its config's ``epochs``);
    * ``stopped``: ``"plateau"`` (:func:`zfbook.train.plateaued` holds for its history, its
      anneal and its ``stop_patience``; also when that happened at the limit) or ``"limit"``;
    * ``lr_cuts``: the epochs *after which* the learning rate fell, read from the history,
      counted as ``Config.anneal`` counts them (an anneal after epoch 34 is ``[34]``; a cut
      after the last epoch leaves no trace);
    * ``val_top1_gain``: the gain of validation top-1 (points) over the last 3 epochs
      (:func:`plateau`; ``None`` for a run of one epoch): near 0, a flat end.

    A record that stopped short of its limit without reaching its plateau (not a finished
    run) is refused."""
    hist, cfg = record["history"], record.get("config", {})
    limit = cfg.get("epochs", record["epochs"])
    anneal = cfg.get("anneal", record.get("anneal", ()))
    at_plateau = plateaued(hist, tuple(anneal), cfg.get("stop_patience", record.get("stop_patience")),
                           watched(cfg.get("labels", "true")))   # the rule run_one stopped the run by
    if not at_plateau and record["epochs"] < limit:
        raise ValueError(f"{record['name']} seed {record['seed']} stopped after {record['epochs']} of "
                         f"{limit} epochs without reaching its plateau: not a finished run")
    cuts = [a["epoch"] for a, b in zip(hist, hist[1:]) if b["lr"] < a["lr"]]
    return {"epochs": record["epochs"], "limit": limit, "stopped": "plateau" if at_plateau else "limit",
            "lr_cuts": cuts, "val_top1_gain": plateau(hist)["val_top1_gain"] if len(hist) > 1 else None}


def summarize(records, metric: str, level: float | None = None):
    """(mean, sample standard deviation, n) of ``metric`` over ``records``; with ``level``
    (e.g. 0.95), the mean's Student-t interval instead, a :class:`zfbook.stats.Interval`
    (mean, low, high, n, sd), for the means over seeds that Table 2 and Table 3 compare."""
    if level is not None:
        from .stats import mean_interval
        return mean_interval([r[metric] for r in records], level)
    return mean_sd([r[metric] for r in records])


def mean_sd(values) -> tuple[float, float, int]:
    """(mean, sample standard deviation — NaN for one value —, n) of ``values``."""
    v = torch.tensor([float(x) for x in values], dtype=torch.float64)
    if len(v) == 0:
        raise ValueError("no records")
    return v.mean().item(), (v.std().item() if len(v) > 1 else float("nan")), len(v)
