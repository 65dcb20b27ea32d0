"""Where a run runs (:func:`zfbook.train.train`, :func:`zfbook.train.evaluate`): the device, and
the CPU cores that set the default number of DataLoader workers.

``auto`` picks CUDA, then Apple MPS, then the CPU; asking for a device that is absent is a
one-line error saying which to use instead.
"""
from __future__ import annotations

import os

import torch

from . import models

DEVICES = ("auto", "cpu", "cuda", "mps")


def available_cores() -> int:
    """The CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_workers() -> int:
    """DataLoader workers by default: the CPU cores this process may use, at most 4."""
    return min(4, available_cores())



def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU. Asking for one that is absent is an error."""
    base = str(device).split(":")[0]
    models._check_choice("device", base, DEVICES)
    if base == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if base == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was requested but CUDA is not available here; "
                           "use --device cpu or --device auto")
    if base == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise RuntimeError(f"device {device!r} was requested but Apple MPS is not available here; "
                           "use --device cpu or --device auto")
    try:
        return torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r}; valid devices are: {', '.join(DEVICES)} (or cuda:N)") from None
