"""The chain of layers from the input to a layer, read with ``torch.fx``; anything else on the path
is refused, naming it."""
from __future__ import annotations

import operator
from dataclasses import dataclass

from torch import fx, nn

from ..models import layer_module


_ALLOWED = ("Conv2d, ReLU, MaxPool2d, LocalResponseNorm, Dropout, Flatten, Linear "
            "(and Identity, or AdaptiveAvgPool2d where it is an identity)")


# ------------------------------------------------------------------ the chain of layers
@dataclass(frozen=True)
class Link:
    """One module (or flatten) on the path from the input to a layer.

    ``kind`` is one of ``conv``, ``relu``, ``pool``, ``norm``, ``identity``, ``adaptive``,
    ``flatten``, ``linear``. ``kernel``, ``stride``, ``padding``, ``dilation`` are (h, w)
    pairs for ``conv`` and ``pool``.
    """
    name: str
    kind: str
    module: nn.Module | None = None
    kernel: tuple = (1, 1)
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    dilation: tuple = (1, 1)

    @property
    def short(self) -> str:
        return self.name.rsplit(".", 1)[-1]


def _pair(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


class RefusedError(ValueError):
    """The model's path to the layer is not a chain the deconvnet can invert."""


def _refuse(layer, what: str) -> RefusedError:
    return RefusedError(f"cannot project layer {layer!r}: the path to it passes through {what}; "
                        f"the deconvnet needs a chain of {_ALLOWED}")


def _module_link(layer, name: str, m: nn.Module) -> Link:
    if isinstance(m, nn.Conv2d):
        if m.padding_mode != "zeros":
            raise _refuse(layer, f"'{name}' (Conv2d with padding_mode={m.padding_mode!r}; only 'zeros')")
        k, d = _pair(m.kernel_size), _pair(m.dilation)
        if m.padding == "valid":
            p = (0, 0)
        elif m.padding == "same":
            tot = (d[0] * (k[0] - 1), d[1] * (k[1] - 1))
            if tot[0] % 2 or tot[1] % 2:
                raise _refuse(layer, f"'{name}' (Conv2d with asymmetric padding='same')")
            p = (tot[0] // 2, tot[1] // 2)
        else:
            p = _pair(m.padding)
        return Link(name, "conv", m, k, _pair(m.stride), p, d)
    if isinstance(m, nn.ReLU):
        return Link(name, "relu", m)
    if isinstance(m, nn.MaxPool2d):
        if m.return_indices:
            raise _refuse(layer, f"'{name}' (MaxPool2d with return_indices=True)")
        return Link(name, "pool", m, _pair(m.kernel_size), _pair(m.stride or m.kernel_size),
                    _pair(m.padding), _pair(m.dilation))
    if isinstance(m, nn.LocalResponseNorm):
        return Link(name, "norm", m)
    if type(m) in (nn.Dropout, nn.Identity):
        return Link(name, "identity", m)
    if isinstance(m, nn.AdaptiveAvgPool2d):
        return Link(name, "adaptive", m)
    if isinstance(m, nn.Flatten):
        if (m.start_dim, m.end_dim) != (1, -1):
            raise _refuse(layer, f"'{name}' (Flatten({m.start_dim}, {m.end_dim}); only Flatten(1, -1))")
        return Link(name, "flatten", m)
    if isinstance(m, nn.Linear):
        return Link(name, "linear", m)
    raise _refuse(layer, f"'{name}' ({type(m).__name__})")


def _is_shape(n) -> bool:
    """``x.size()``, ``x.size(0)``, ``x.shape`` or an item of one of them."""
    if not isinstance(n, fx.Node):
        return False
    if n.op == "call_method" and n.target == "size":
        return True
    if n.op == "call_function" and n.target is getattr and n.args[1] == "shape":
        return True
    return n.op == "call_function" and n.target is operator.getitem and _is_shape(n.args[0])


def _function_link(layer, n: fx.Node) -> Link:
    """A flatten written as a function or method; anything else is refused."""
    fn = n.target if n.op == "call_method" else getattr(n.target, "__name__", str(n.target))
    args, kw = n.args, n.kwargs
    if fn == "flatten":
        start = args[1] if len(args) > 1 else kw.get("start_dim", 0)
        end = args[2] if len(args) > 2 else kw.get("end_dim", -1)
        if (start, end) == (1, -1):
            return Link(n.name, "flatten")
    if fn in ("view", "reshape") and len(args) == 3 and not kw and _is_shape(args[1]) and args[2] == -1:
        return Link(n.name, "flatten")
    what = {"call_method": "method", "call_function": "function"}.get(n.op, n.op)
    inputs = [a for a in n.all_input_nodes if not _is_shape(a)]
    extra = " (a residual addition)" if fn in ("add", "iadd") and len(inputs) > 1 else ""
    if fn == "relu":
        extra = " (a functional ReLU: use an nn.ReLU module)"
    return _refuse(layer, f"the {what} {fn!r} (node '{n.name}'){extra}")


def _module_name(model: nn.Module, layer: str) -> str:
    target = layer_module(model, layer)  # raises, listing the valid layer names
    for name, m in model.named_modules():
        if m is target:
            return name
    raise AssertionError("unreachable")


def chain(model: nn.Module, layer: str) -> list[Link]:
    """The modules from the input up to ``layer`` (inclusive), read from ``model``'s forward.

    Raises :class:`RefusedError` naming the first module or operation on the path that is
    not one of the layer types the deconvnet can invert.
    """
    name = _module_name(model, layer)
    try:
        graph = fx.symbolic_trace(model).graph
    except Exception as e:  # data-dependent control flow etc.
        raise RefusedError(f"cannot project layer {layer!r}: torch.fx cannot read "
                           f"{type(model).__name__}'s forward as a graph ({e})") from e
    calls = [n for n in graph.nodes if n.op == "call_module"
             and (n.target == name or n.target.startswith(name + "."))]
    if not calls:
        raise RefusedError(f"cannot project layer {layer!r}: module '{name}' is not called in "
                           f"{type(model).__name__}'s forward")
    if sum(n.target == name for n in calls) > 1:
        raise RefusedError(f"cannot project layer {layer!r}: module '{name}' is called more than "
                           "once in the forward, so its output is ambiguous")
    modules = dict(model.named_modules())
    links, node = [], calls[-1]  # a container's output is its last module's output
    while node.op != "placeholder":
        if node.op == "call_module":
            link = _module_link(layer, node.target, modules[node.target])
            inputs = node.all_input_nodes
            if len(inputs) != 1:
                raise _refuse(layer, f"'{node.target}' ({type(modules[node.target]).__name__} "
                                     f"with {len(inputs)} inputs)")
        elif node.op in ("call_function", "call_method"):
            link = _function_link(layer, node)
            if isinstance(link, RefusedError):
                raise link
            inputs = [a for a in node.all_input_nodes if not _is_shape(a)]
            if len(inputs) != 1:
                raise _refuse(layer, f"'{node.name}' ({len(inputs)} tensor inputs)")
        else:
            raise _refuse(layer, f"the graph node '{node.name}' ({node.op})")
        links.append(link)
        node = inputs[0]
    return links[::-1]
