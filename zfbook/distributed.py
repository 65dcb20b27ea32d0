"""Beyond one process: ``torchrun`` and ``torch.distributed``, for training and the top-k search.

Nothing here launches processes: ``torchrun --nproc_per_node N -m zfbook VERB …`` starts N
copies and sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``; :func:`init` reads them and joins the process group (NCCL on CUDA, gloo on
the CPU). Without them everything runs as one process, unchanged.

* :func:`shard` — the contiguous block of a dataset one rank reads.
* :func:`top_activations` — the search behind Fig. 2 and Fig. 4 split over the ranks: each
  searches its shard with :func:`zfbook.topk.top_activations`, the shard's image numbers
  are shifted to the dataset's, and the per-map lists of all ranks are combined with
  :func:`zfbook.topk.merge`. Every rank gets the same result, exactly the single-process
  search (same values, images, locations and order, ties included).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from . import topk

__all__ = ["World", "world", "init", "shard", "top_activations", "is_main"]


@dataclass(frozen=True)
class World:
    """This process's place in the job: ``rank`` of ``size`` (``local_rank`` on its node)."""
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one that writes files and prints."""
        return self.rank == 0


def world() -> World:
    """The job as torchrun's environment (or an initialised process group) describes it."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    size = int(os.environ.get("WORLD_SIZE", 1))
    return World(int(os.environ.get("RANK", 0)), size, int(os.environ.get("LOCAL_RANK", 0)))


def is_main() -> bool:
    return world().main


def init(device: torch.device | str = "cpu") -> World:
    """Join the process group torchrun describes (once): NCCL on CUDA (and this process
    takes GPU ``LOCAL_RANK``), gloo otherwise. A single process (no ``WORLD_SIZE``, or 1)
    initialises nothing."""
    w = world()
    if w.size <= 1 or dist.is_initialized():
        return w
    if "MASTER_ADDR" not in os.environ:
        raise RuntimeError("WORLD_SIZE is set but MASTER_ADDR is not: start distributed runs "
                           "with torchrun (e.g. torchrun --nproc_per_node 2 -m zfbook ...)")
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.set_device(w.local_rank)
    dist.init_process_group("nccl" if cuda else "gloo")
    return world()


def shard(n: int, rank: int, size: int) -> range:
    """The images ``rank`` of ``size`` reads: a contiguous block, the first ``n % size``
    ranks one image more."""
    if not 0 <= rank < size:
        raise ValueError(f"rank {rank} is outside a world of size {size}")
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return range(start, start + base + (rank < extra))


def _gather(obj, size: int) -> list:
    out = [None] * size
    dist.all_gather_object(out, obj)
    return out


def top_activations(model, data, layers, k: int = 9, *, batch_size: int = 64, transform=None,
                    progress: bool = True, workers: int = 0):
    """:func:`zfbook.topk.top_activations` with the images split over the process group.

    ``data`` is a tensor of preprocessed images (N, C, H, W) or a map-style dataset whose
    items are images or (image, label) pairs; each rank searches :func:`shard` of it and the
    results are merged exactly. Every rank returns the same :class:`~zfbook.topk.TopK` (or
    dict of them). Without an initialised process group this is the plain search.
    """
    w = world()
    if w.size <= 1 or not dist.is_initialized():
        return topk.top_activations(model, data, layers, k, batch_size=batch_size,
                                    transform=transform, progress=progress)
    part = shard(len(data), w.rank, w.size)
    if isinstance(data, torch.Tensor):
        mine = data[part.start:part.stop]
    else:
        from torch.utils.data import DataLoader, Subset
        from .loaders import quiet_worker
        mine = DataLoader(Subset(data, part), batch_size=batch_size, num_workers=workers,
                          worker_init_fn=quiet_worker)
    single = isinstance(layers, str)
    names = [layers] if single else list(dict.fromkeys(layers))
    if len(part):
        found = topk.top_activations(model, mine, names, k, batch_size=batch_size,
                                     transform=transform, progress=progress and w.main)
        for t in found.values():  # the shard's numbering → the dataset's
            t.index = torch.where(t.index >= 0, t.index + part.start, t.index)
        found = {n: t.to_dict() for n, t in found.items()}
    else:
        found = None
    parts = [p for p in _gather(found, w.size) if p is not None]
    if not parts:
        raise ValueError("data is empty")
    out = {n: topk.merge(*(topk.TopK(n, **p[n]) for p in parts), k=k) for n in names}
    return out[names[0]] if single else out
