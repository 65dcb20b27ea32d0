"""The controls of an :class:`~zfbook.widgets.Explorer`: a slider or a drop-down over a
short list of values, and which of them the static book precomputes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

__all__ = ["Control", "slider", "dropdown"]

_KINDS = ("slider", "dropdown")


@dataclass(frozen=True)
class Control:
    """One control: a ``name`` (the keyword passed to ``render``) over ``values``.

    ``labels`` are what the reader sees; ``static`` are the indices into ``values``
    precomputed for the static book (all of them by default).
    """

    name: str
    kind: str
    values: tuple
    labels: tuple
    static: tuple
    label: str

    def __post_init__(self):
        if not (isinstance(self.name, str) and self.name.isidentifier()):
            raise ValueError(f"control name must be a Python identifier (it is passed to "
                             f"render as a keyword), got {self.name!r}")
        if self.kind not in _KINDS:
            raise ValueError(f"unknown control kind {self.kind!r}; kinds are {', '.join(_KINDS)}")
        if not self.values:
            raise ValueError(f"control {self.name!r} has no values")
        if len(self.labels) != len(self.values):
            raise ValueError(f"control {self.name!r}: {len(self.labels)} labels for "
                             f"{len(self.values)} values")
        if not self.static:
            raise ValueError(f"control {self.name!r}: static selects no values")


def _control(kind, name, values, labels, static, label) -> Control:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"control {name!r}: values must be a sequence such as a list or "
                        f"range, got {type(values).__name__}")
    values = tuple(values)
    labels = tuple(str(v) for v in values) if labels is None else tuple(str(x) for x in labels)
    if static is None:
        indices = tuple(range(len(values)))
    else:
        indices = []
        for v in static:
            matches = [i for i, w in enumerate(values) if _same(w, v)]
            if not matches:
                raise ValueError(f"control {name!r}: static value {v!r} is not one of its "
                                 f"values {list(labels)}")
            indices.append(matches[0])
        indices = tuple(indices)
    return Control(name, kind, values, labels, indices, name if label is None else str(label))


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:  # e.g. arrays, whose == is elementwise
        return a is b


def slider(name: str, values: Sequence, labels: Sequence | None = None,
           static: Sequence | None = None, label: str | None = None) -> Control:
    """A slider over ``values`` (ordered: layers, feature maps, positions, epochs).

    ``static``: the subset of ``values`` precomputed for the static book (default: all).
    ``label``: the text shown next to the slider (default: ``name``).
    """
    return _control("slider", name, values, labels, static, label)


def dropdown(name: str, values: Sequence, labels: Sequence | None = None,
             static: Sequence | None = None, label: str | None = None) -> Control:
    """A drop-down menu over ``values`` (unordered choices: models, images, methods)."""
    return _control("dropdown", name, values, labels, static, label)
