"""Argument checks at the public entry points of the library (and the command line).

Each check raises a one-line ``ValueError`` that names the argument, the valid range and the
value it got, instead of letting a bad value be truncated (``feature=2.7`` read as 2, ``True``
as 1), run into an internal error far away (``range() arg 3 must not be zero``) or quietly
produce NaN maps. Integers are ints, NumPy integers or integer tensors with one element —
never bools or floats; numbers are finite.
"""
from __future__ import annotations

import math
import numbers

import torch

__all__ = ["integer", "number", "finite_images"]


def _range(low, high, low_open=False, high_open=False) -> str:
    lo = "" if low is None else (f"> {low}" if low_open else f"≥ {low}")
    hi = "" if high is None else (f"< {high}" if high_open else f"≤ {high}")
    if low is not None and high is not None and not (low_open or high_open):
        return f"in {low}…{high}"
    return " and ".join(p for p in (lo, hi) if p)


def integer(name: str, value, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int, if it is an integer in ``low…high`` (either may be None)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point() \
            and value.dtype != torch.bool:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        where = f" {_range(low, high)}" if low is not None or high is not None else ""
        raise ValueError(f"{name} must be an integer{where}, got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be an integer {_range(low, high)}, got {value}")
    return value


def number(name: str, value, low: float | None = None, high: float | None = None, *,
           low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a float, if it is a finite real number within the bounds
    (``low_open``/``high_open``: the bound itself is excluded)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    where = _range(low, high, low_open, high_open)
    text = f"{name} must be a finite number{' ' + where if where else ''}, got {value!r}"
    if not ok or not math.isfinite(float(value)):
        raise ValueError(text)
    v = float(value)
    if low is not None and (v < low or (low_open and v == low)):
        raise ValueError(text)
    if high is not None and (v > high or (high_open and v == high)):
        raise ValueError(text)
    return v


def finite_images(name: str, images) -> None:
    """Refuse a tensor of images holding NaN or ±inf (it would give NaN maps, or fail deep
    inside with an unrelated message)."""
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"{name} must be a tensor, got {type(images).__name__}")
    if images.is_floating_point() or images.is_complex():
        bad = ~torch.isfinite(images)
        if bool(bad.any()):
            raise ValueError(f"NaN or inf in {name} ({int(bad.sum()):,} of {images.numel():,} "
                             "values); pass finite pixel values")
