"""The deconvnet (Section 2.1, Fig. 1): project one activation back to pixel space.

A forward pass records the max-pool **switches**. One activation of one feature map is
kept, every other activation of its layer is set to zero, and the signal goes back down
to the pixels, layer by layer:

* **unpool** — each value goes back to its switch; where overlapping 3×3/2 pools pick
  the same input position, the values are *summed* (:func:`unpool`);
* **rectify** — ReLU;
* **filter** — the layer's own filters, transposed, without biases
  (``torch.nn.grad.conv2d_input``, which reproduces the exact input size for stride > 1);
* contrast normalisation is passed through unchanged, dropout is the identity, fc layers
  are filtered by their transposed weight matrix.

Without contrast normalisation this is a *modified backward pass*: the gradient of the
activation with respect to the input when ReLU's backward is replaced by ReLU of the
incoming gradient (what Captum calls ``Deconvolution``), with the backward pass seeded with
the activation's value. For the non-negative activations of rectified layers that is the
value times the gradient (:func:`gradient` computes it with autograd).

Any model works whose path from the input to ``layer`` is a chain of ``nn.Conv2d``,
``nn.ReLU``, ``nn.MaxPool2d``, ``nn.LocalResponseNorm``, ``nn.Dropout``, ``nn.Flatten``/
``torch.flatten``, ``nn.Linear`` (plus ``nn.Identity``, and ``nn.AdaptiveAvgPool2d`` where
it is an identity at the given input size): the zfbook models (layers ``conv1``…``fc8``)
and torchvision's AlexNet and VGG (layers named as in ``named_modules()``). The chain is
read with ``torch.fx``; anything else on the path is refused, naming it.

Speed: each image's forward pass is shared by all its projections, the down passes are
batched, and each down pass is cropped to the receptive field of its activation
(:func:`receptive_field`), which gives the same numbers for a fraction of the work.
"""
from __future__ import annotations

import copy as _copy
import operator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.nn.grad import conv2d_input

from .checks import finite_images, integer
from .models import ConvNet, layer_module

__all__ = ["project", "gradient", "pass_norm", "receptive_field", "crop", "switches", "unpool", "steps", "Step",
           "chain", "Link", "RefusedError"]

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


# ------------------------------------------------------------------ forward: the switches
@dataclass
class _Record:
    out: torch.Tensor   # the layer's output
    sizes: list         # input shape (without batch) of every link
    switches: dict      # link index -> max-pool indices (N, C, Hout, Wout)


def _forward(links: list[Link], layer, x: torch.Tensor) -> _Record:
    sizes, sw = [], {}
    for i, l in enumerate(links):
        sizes.append(tuple(x.shape[1:]))
        if l.kind == "conv" or l.kind == "norm":
            x = l.module(x)
        elif l.kind == "relu":
            x = F.relu(x)  # never in place: the caller's tensors stay intact
        elif l.kind == "pool":
            m = l.module
            x, sw[i] = F.max_pool2d(x, m.kernel_size, m.stride, m.padding, m.dilation,
                                    ceil_mode=m.ceil_mode, return_indices=True)
        elif l.kind == "adaptive":
            size = tuple(a if a is not None else b
                         for a, b in zip(_pair(l.module.output_size), x.shape[-2:]))
            if size != tuple(x.shape[-2:]):
                raise _refuse(layer, f"'{l.name}' (AdaptiveAvgPool2d to {size} of a "
                                     f"{tuple(x.shape[-2:])} input, which is not an identity)")
        elif l.kind == "flatten":
            x = x.flatten(1)
        elif l.kind == "linear":
            if x.dim() != 2:
                raise _refuse(layer, f"'{l.name}' (Linear applied to a {x.dim()}-d tensor)")
            x = l.module(x)
        # identity (Dropout at test time, Identity): nothing
    return _Record(x, sizes, sw)


def unpool(x: torch.Tensor, switches: torch.Tensor, size) -> torch.Tensor:
    """Put every value of ``x`` (N, C, h, w) back at its switch, in an (N, C, *size) map.

    ``switches`` are the flat indices returned by ``F.max_pool2d(..., return_indices=True)``.
    Where overlapping pooling windows chose the same input position, their values are
    **summed** (``torch.nn.functional.max_unpool2d`` would keep only one of them).
    """
    n, c = x.shape[:2]
    out = x.new_zeros(n, c, size[0] * size[1])
    return out.scatter_add_(2, switches.flatten(2), x.flatten(2)).view(n, c, *size)


# ------------------------------------------------------------------ down: windows
@dataclass
class _Window:
    """The down-pass signal of S seeds, cropped to a window of the current plane.

    ``sig`` is (S, C, h, w) (or (S, F) below a flatten); ``org`` the window's top-left in the
    plane, ``top`` the top-left of the unclipped receptive field, ``ext`` its (h, w) extent.
    """
    sig: torch.Tensor
    org: tuple  # (oy, ox), each (S,) long
    top: tuple  # (ty, tx), each (S,) long
    ext: tuple  # (ey, ex) ints


def _place(t: torch.Tensor, sy: torch.Tensor, sx: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """out[s, :, i, j] = t[s, :, i + sy[s], j + sx[s]], zero where that is outside ``t``."""
    s, _, ht, wt = t.shape
    if bool((sy == sy[0]).all()) and bool((sx == sx[0]).all()):
        y0, x0 = int(sy[0]), int(sx[0])  # the same shift for every seed: crop / pad
        if (y0, x0, ht, wt) == (0, 0, h, w):
            return t
        return F.pad(t, (-x0, w - wt + x0, -y0, h - ht + y0))
    rows = sy[:, None] + torch.arange(h, device=t.device)
    cols = sx[:, None] + torch.arange(w, device=t.device)
    rows = rows.masked_fill((rows < 0) | (rows >= ht), ht)  # -> the zero row added below
    cols = cols.masked_fill((cols < 0) | (cols >= wt), wt)
    t = F.pad(t, (0, 1, 0, 1))
    b = torch.arange(s, device=t.device)[:, None, None]
    return t[b, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def _down_geometry(win: _Window, l: Link, size) -> tuple:
    """Receptive field and window of the link's input plane (``size`` = its (H, W))."""
    top = tuple(t * s - p for t, s, p in zip(win.top, l.stride, l.padding))
    ext = tuple((e - 1) * s + d * (k - 1) + 1
                for e, s, d, k in zip(win.ext, l.stride, l.dilation, l.kernel))
    hw = tuple(min(e, n) for e, n in zip(ext, size))
    org = tuple(t.clamp(0, n - h) for t, n, h in zip(top, size, hw))
    return top, ext, hw, org


def _out_plane(plane, l: Link) -> tuple:
    """Output (H, W) of a conv link on an input plane of (H, W)."""
    return tuple((n + 2 * p - d * (k - 1) - 1) // s + 1
                 for n, p, d, k, s in zip(plane, l.padding, l.dilation, l.kernel, l.stride))


def _down(win: _Window, l: Link, size, switches: torch.Tensor | None, img: torch.Tensor,
          crop: bool) -> _Window:
    """One link of the down pass: from the link's output plane to its input plane."""
    k = l.kind
    if k == "relu":
        return _Window(win.sig.relu(), win.org, win.top, win.ext)
    if k in ("norm", "identity", "adaptive"):  # contrast norm passes through unchanged
        return win
    if k == "linear":
        return _Window(win.sig @ l.module.weight, win.org, win.top, win.ext)
    if k == "flatten":
        s = win.sig.shape[0]
        zero = win.sig.new_zeros(s, dtype=torch.long)
        return _Window(win.sig.view(s, *size), (zero, zero), (zero, zero), tuple(size[-2:]))
    plane = size[-2:]
    top, ext, hw, org = _down_geometry(win, l, plane)
    if not crop:
        hw, org = tuple(plane), tuple(torch.zeros_like(o) for o in org)
    sig = win.sig
    s, _, h, w = sig.shape
    if k == "conv":
        m = l.module
        if tuple(hw) == tuple(plane) and (h, w) == _out_plane(plane, l):
            # dense: the whole plane in and out; the library reproduces the exact input size
            sig = conv2d_input((s, m.in_channels, *plane), m.weight, sig, stride=l.stride,
                               padding=l.padding, dilation=l.dilation, groups=m.groups)
            return _Window(sig, org, top, ext)
        comp_hw = [(a - 1) * st + d * (kk - 1) + 1
                   for a, st, d, kk in zip((h, w), l.stride, l.dilation, l.kernel)]
        comp = conv2d_input((s, m.in_channels, *comp_hw), m.weight, sig, stride=l.stride,
                            padding=0, dilation=l.dilation, groups=m.groups)
        # comp[..., 0, 0] sits at plane position (org * stride - padding)
        shift = [o2 - (o * st - p) for o2, o, st, p in zip(org, win.org, l.stride, l.padding)]
        return _Window(_place(comp, *shift, *hw), org, top, ext)
    if k == "pool":
        hout, wout = switches.shape[-2:]
        if (h, w) == (hout, wout):
            ind = switches[img]
        else:
            rows = win.org[0][:, None] + torch.arange(h, device=sig.device)
            cols = win.org[1][:, None] + torch.arange(w, device=sig.device)
            ind = switches[img[:, None, None], :, rows[:, :, None], cols[:, None, :]]
            ind = ind.permute(0, 3, 1, 2)
        if tuple(hw) != tuple(plane):
            iy = (ind // plane[1] - org[0][:, None, None, None]).clamp_(0, hw[0] - 1)
            ix = (ind % plane[1] - org[1][:, None, None, None]).clamp_(0, hw[1] - 1)
            ind = iy * hw[1] + ix  # positions outside the window carry zeros: clamping is harmless
        return _Window(unpool(sig, ind, hw), org, top, ext)
    raise AssertionError(k)


def _seed(out: torch.Tensor, img, feat, loc) -> tuple[_Window, torch.Tensor]:
    """Keep one activation per seed (the strongest of its map, or the one at ``loc``)."""
    s = img.shape[0]
    ar = torch.arange(s, device=out.device)
    if out.dim() == 2:
        v = out[img, feat]
        sig = out.new_zeros(s, out.shape[1])
        sig[ar, feat] = v
        zero = torch.zeros(s, dtype=torch.long, device=out.device)
        return _Window(sig, (zero, zero), (zero, zero), (1, 1)), v
    maps = out[img, feat]  # (S, H, W)
    if loc is None:
        flat = maps.flatten(1).argmax(1)  # the first maximum, row-major
        y, x = flat // maps.shape[-1], flat % maps.shape[-1]
    else:
        y, x = loc[:, 0], loc[:, 1]
    v = maps[ar, y, x]
    sig = out.new_zeros(s, out.shape[1], 1, 1)
    sig[ar, feat, 0, 0] = v
    return _Window(sig, (y, x), (y, x), (1, 1)), v


def _run_down(links, rec: _Record, img, feat, loc, crop: bool, record=None) -> torch.Tensor:
    win, _ = _seed(rec.out, img, feat, loc)
    if not crop and win.sig.dim() == 4:
        win = _Window(_place(win.sig, -win.org[0], -win.org[1], *rec.out.shape[-2:]),
                      tuple(torch.zeros_like(o) for o in win.org), win.top, win.ext)
    if record is not None:
        record.append(("seed", len(links) - 1, win.sig))
    for i in range(len(links) - 1, -1, -1):
        win = _down(win, links[i], rec.sizes[i], rec.switches.get(i), img, crop)
        if record is not None:
            record.append((links[i].kind, i, win.sig))
    h, w = rec.sizes[0][-2:]
    return _place(win.sig, -win.org[0], -win.org[1], h, w)


# ------------------------------------------------------------------ the public API
def _check_seeds(rec: _Record, layer, feat, loc):
    n_maps = rec.out.shape[1]
    if len(feat) and (feat.min() < 0 or feat.max() >= n_maps):
        bad = int(feat[(feat < 0) | (feat >= n_maps)][0])
        raise ValueError(f"feature {bad} is out of range: layer {layer!r} has {n_maps} "
                         f"feature maps (0…{n_maps - 1})")
    if loc is None:
        return
    if rec.out.dim() == 2:
        raise ValueError(f"layer {layer!r} is fully connected: its units have no location; "
                         "pass location=None")
    h, w = rec.out.shape[-2:]
    bad = (loc[:, 0] < 0) | (loc[:, 0] >= h) | (loc[:, 1] < 0) | (loc[:, 1] >= w)
    if bad.any():
        y, x = loc[bad][0].tolist()
        raise ValueError(f"location {(y, x)} is outside layer {layer!r}'s {h}×{w} maps")


def _as_long(v, name: str) -> torch.Tensor:
    """``v`` as a long tensor; floats and bools are refused, not truncated."""
    try:
        t = torch.as_tensor(v)
    except (ValueError, TypeError, RuntimeError) as e:
        raise ValueError(f"{name} must be an int, a sequence of ints or a rectangular (N, K) "
                         f"nested sequence ({e})") from e
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        shown = v if t.numel() == 1 else f"{t.dtype} values"
        raise ValueError(f"{name} must be integers (an int, ints or (N, K) ints), got {shown!r}")
    return t.long().cpu()


def _seeds(n: int, feature, location, index):
    """Flatten the three ``feature`` forms to per-seed (image, feature, location)."""
    feat = _as_long(feature, "feature")
    if index is not None:
        img = _as_long(index, "index").flatten()
        if img.numel() and (img.min() < 0 or img.max() >= n):
            raise ValueError(f"index must be between 0 and {n - 1} (there are {n} images)")
        if feat.dim() > 1 or (feat.dim() == 1 and feat.numel() != img.numel()):
            raise ValueError(f"with index=, feature must be an int or {img.numel()} ints "
                             f"(one per index), got shape {tuple(feat.shape)}")
        lead = (img.numel(),)
    elif feat.dim() == 0:
        lead = (n,)
    elif feat.dim() == 1:
        if feat.numel() != n:
            raise ValueError(f"feature has {feat.numel()} entries but there are {n} images; "
                             "give one feature per image, or an (N, K) nested sequence")
        lead = (n,)
    elif feat.dim() == 2:
        if feat.shape[0] != n:
            raise ValueError(f"feature has {feat.shape[0]} rows but there are {n} images")
        lead = tuple(feat.shape)
    else:
        raise ValueError(f"feature must be an int, N ints or (N, K) ints, got shape {tuple(feat.shape)}")
    if index is None:
        img = torch.arange(n).repeat_interleave(lead[1] if len(lead) == 2 else 1)
    feat = feat.expand(lead).reshape(-1)
    loc = None
    if location is not None:
        loc = _as_long(location, "location")
        if loc.shape[-1:] != (2,):
            raise ValueError(f"location must be (y, x) pairs, got shape {tuple(loc.shape)}")
        try:
            loc = loc.expand(*lead, 2).reshape(-1, 2)
        except RuntimeError as e:
            raise ValueError(f"location of shape {tuple(loc.shape)} does not match the "
                             f"features' shape {lead}") from e
    return img, feat, loc, lead


@torch.no_grad()
def project(model: nn.Module, images: torch.Tensor, layer: str, feature, location=None, *,
            index=None, crop: bool = True, batch_size: int = 64) -> torch.Tensor:
    """Project activations of ``layer`` back to pixel space with the deconvnet (Fig. 1).

    Args:
        model: a zfbook model (layers ``conv1``…``fc8``) or a chain-like torchvision model
            (layers named by ``named_modules()``); see the module docstring.
        images: preprocessed images (N, C, H, W), as the model takes them.
        layer: the layer whose activation is projected.
        feature: which feature map (fc layers: which unit), in one of three forms:
            an int (the same map for every image) → (N, C, H, W);
            N ints (one map per image) → (N, C, H, W);
            an (N, K) nested sequence (K maps per image) → (N, K, C, H, W).
        location: ``None`` for each map's strongest activation (the first in row-major
            order), or the (y, x) of the activation, shaped like ``feature`` plus a last
            axis of 2; a single (y, x) pair applies to all. ``None`` for fc layers.
        index: optional S image indices: seed s projects ``feature[s]`` of ``images[index[s]]``
            (``feature`` an int or S ints, ``location`` S pairs) → (S, C, H, W). Repeated
            images share one forward pass.
        crop: run each down pass only over its activation's receptive field (same result).
        batch_size: how many down passes run at once.

    Each projection is seeded with the activation's value: for rectified layers it equals
    that value times the modified-backward gradient (ReLU's backward replaced by ReLU of the
    gradient) on paths without contrast normalisation; see :func:`gradient`.
    """
    if images.dim() != 4:
        raise ValueError(f"images must be a batch (N, C, H, W), got shape {tuple(images.shape)}; "
                         "add a batch axis with images[None]")
    finite_images("images", images)
    batch_size = integer("batch_size", batch_size, 1)
    links = chain(model, layer)
    img, feat, loc, lead = _seeds(images.shape[0], feature, location, index)
    dev = images.device
    result = images.new_zeros(img.numel(), *images.shape[1:])
    order = torch.argsort(img, stable=True)  # seeds of one image together: shared forward
    for start in range(0, len(order), batch_size):
        part = order[start:start + batch_size]
        uniq, inv = torch.unique(img[part], return_inverse=True)
        rec = _forward(links, layer, images[uniq.to(dev)])
        p_loc = None if loc is None else loc[part]
        _check_seeds(rec, layer, feat[part], p_loc)
        result[part.to(dev)] = _run_down(links, rec, inv.to(dev), feat[part].to(dev),
                                         None if p_loc is None else p_loc.to(dev), crop)
    return result.view(*lead, *images.shape[1:])


@torch.no_grad()
def switches(model: nn.Module, images: torch.Tensor, layer: str) -> dict[str, torch.Tensor]:
    """The switches of every max pool on the path to ``layer``: name → flat indices (N, C, h, w).

    Names are module names (the short ``pool1``… for zfbook models).
    """
    finite_images("images", images)
    links = chain(model, layer)
    rec = _forward(links, layer, images)
    short = isinstance(model, ConvNet)
    return {(links[i].short if short else links[i].name): s for i, s in rec.switches.items()}


@dataclass
class Step:
    """One step of the down pass: after ``op`` at module ``name`` the signal is ``output``.

    ``op`` is ``seed`` (the isolated activation), ``rectify``, ``unpool``, ``filter``,
    ``pass`` (contrast normalisation, passed through), ``identity`` or ``unflatten``.
    ``output`` is (C, H, W), or (F,) above a flatten.
    """
    name: str
    op: str
    output: torch.Tensor


_OPS = {"seed": "seed", "relu": "rectify", "pool": "unpool", "conv": "filter", "linear": "filter",
        "norm": "pass", "identity": "identity", "adaptive": "identity", "flatten": "unflatten"}


@torch.no_grad()
def steps(model: nn.Module, image: torch.Tensor, layer: str, feature: int,
          location=None) -> list[Step]:
    """The down pass of one activation, step by step (Fig. 1, right half).

    ``image`` is (C, H, W) or (1, C, H, W). The first step is the isolated activation at
    ``layer``; the last one's output is the projection in pixel space (what
    :func:`project` returns).
    """
    image = image if image.dim() == 4 else image.unsqueeze(0)
    finite_images("image", image)
    links = chain(model, layer)
    img, feat, loc, _ = _seeds(1, integer("feature", feature, 0), location, None)
    rec = _forward(links, layer, image)
    _check_seeds(rec, layer, feat, loc)
    record = []
    _run_down(links, rec, img.to(image.device), feat.to(image.device),
              None if loc is None else loc.to(image.device), crop=False, record=record)
    short = isinstance(model, ConvNet)
    return [Step(links[i].short if short else links[i].name, _OPS[k], s[0])
            for k, i, s in record]


# ------------------------------------------------------------------ as a modified gradient
class _RectifiedGradient(torch.autograd.Function):
    """ReLU forward; backward = ReLU of the incoming gradient (the deconvnet's rectification)."""

    @staticmethod
    def forward(ctx, x):
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp(min=0)


class _DeconvReLU(nn.Module):
    def forward(self, x):
        return _RectifiedGradient.apply(x)


class _PassNorm(nn.Module):
    """Contrast normalisation forward, identity backward."""

    def __init__(self, norm: nn.Module):
        super().__init__()
        self.norm = norm

    def forward(self, x):
        return x + (self.norm(x) - x).detach()


def pass_norm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose contrast normalisation (``nn.LocalResponseNorm``) computes the
    same forward but passes the gradient through unchanged, as the deconvnet does on the way
    down (Section 2.1). Attribution libraries run on this copy compute the deconvnet's own
    projection (e.g. Captum's ``NeuronDeconvolution``)."""
    return _swap(_copy.deepcopy(model), nn.LocalResponseNorm, _PassNorm)


def _swap(net: nn.Module, kind: type, make) -> nn.Module:
    """Replace, in place, every ``kind`` submodule ``m`` of ``net`` by ``make(m)``."""
    for mname, m in list(net.named_modules()):
        if isinstance(m, kind):
            parent, _, child = mname.rpartition(".")
            setattr(net.get_submodule(parent), child, make(m))
    return net


def gradient(model: nn.Module, images: torch.Tensor, layer: str, feature, location=None, *,
             norm: str = "pass") -> torch.Tensor:
    """The same projection computed by autograd: a *modified backward pass* (Section 2.1).

    The gradient of the chosen activation with respect to the input, with ReLU's backward
    replaced by ReLU of the incoming gradient, and the backward pass seeded with the
    activation's value instead of 1 (for a non-negative activation, that is the value times
    the gradient; a negative seed flips what the rectifications keep). With
    ``norm="pass"`` contrast normalisation is passed through unchanged on the way down, as
    in the deconvnet, and the result equals :func:`project`; ``norm="backprop"``
    differentiates it, which is what attribution libraries ("Deconvolution") compute.
    ``feature``: an int or N ints; ``location``: ``None``, a (y, x) pair or N pairs.
    One backward pass per image: a reference, not the fast path.
    """
    if norm not in ("pass", "backprop"):
        raise ValueError(f"unknown norm {norm!r}; valid norms are: pass, backprop")
    finite_images("images", images)
    name = _module_name(model, layer)
    chain(model, layer)  # refuse the same models project() refuses
    img, feat, loc, _ = _seeds(images.shape[0], feature, location, None)
    net = _swap(pass_norm(model) if norm == "pass" else _copy.deepcopy(model), nn.ReLU,
                lambda _: _DeconvReLU()).eval()
    target = net.get_submodule(name)
    seen = []

    class _Stop(Exception):
        pass

    def hook(_m, _i, out):
        seen.append(out)
        raise _Stop

    handle = target.register_forward_hook(hook)
    out = torch.empty_like(images)
    try:
        for s in range(images.shape[0]):
            x = images[s:s + 1].detach().clone().requires_grad_(True)
            seen.clear()
            try:
                net(x)
            except _Stop:
                pass
            act = seen[0][0, feat[s]]
            if act.dim() == 0:
                if loc is not None:
                    raise ValueError(f"layer {layer!r} is fully connected: pass location=None")
                a = act
            elif loc is None:
                a = act.flatten()[act.flatten().argmax()]
            else:
                a = act[loc[s, 0], loc[s, 1]]
            # seeded with the activation's value, as the deconvnet is
            (g,) = torch.autograd.grad(a, x, grad_outputs=a.detach())
            out[s] = g[0]
    finally:
        handle.remove()
    return out


# ------------------------------------------------------------------ receptive fields
def receptive_field(model: nn.Module, layer: str, location):
    """The input box (top, left, bottom, right) that the unit at ``location`` of ``layer`` sees.

    ``bottom``/``right`` are exclusive, like slices; the box may extend beyond the image
    (padding). ``location`` is a (y, x) pair → a tuple of 4 ints, or an array of pairs
    (..., 2) → a long tensor (..., 4). Crop the patch with :func:`crop`.
    """
    links = chain(model, layer)
    start, step, ext = [0, 0], [1, 1], [1, 1]  # top = start + step * y; extent ext
    for l in reversed(links):
        if l.kind in ("flatten", "linear"):
            raise ValueError(f"layer {layer!r} is fully connected: its units see the whole image")
        if l.kind in ("conv", "pool"):
            for a in range(2):  # going down: top_in = top_out * stride - padding
                start[a] = start[a] * l.stride[a] - l.padding[a]
                step[a] = step[a] * l.stride[a]
                ext[a] = (ext[a] - 1) * l.stride[a] + l.dilation[a] * (l.kernel[a] - 1) + 1
    loc = _as_long(location, "location")
    if loc.shape[-1:] != (2,):
        raise ValueError(f"location must be a (y, x) pair or pairs, got shape {tuple(loc.shape)}")
    top = start[0] + step[0] * loc[..., 0]
    left = start[1] + step[1] * loc[..., 1]
    box = torch.stack([top, left, top + ext[0], left + ext[1]], -1)
    return tuple(box.tolist()) if loc.dim() == 1 else box


def crop(images: torch.Tensor, box, fill: float = 0.0) -> torch.Tensor:
    """Cut ``box`` = (top, left, bottom, right) out of ``images``, padding with ``fill`` outside.

    ``images`` is (C, H, W) with one box, or (N, C, H, W) with one box or N boxes (all the
    same size, as the receptive fields of one layer are). For mean-subtracted images
    ``fill=0`` is the mean colour.
    """
    box = torch.as_tensor(box, dtype=torch.long)
    single = images.dim() == 3
    x = images.unsqueeze(0) if single else images
    boxes = box.expand(x.shape[0], 4) if box.dim() == 1 else box
    if boxes.shape != (x.shape[0], 4):
        raise ValueError(f"need one box or {x.shape[0]} boxes, got shape {tuple(box.shape)}")
    sizes = boxes[:, 2:] - boxes[:, :2]
    if not bool((sizes == sizes[0]).all()) or bool((sizes[0] <= 0).any()):
        raise ValueError("all boxes must have the same positive size")
    h, w = x.shape[-2:]
    m = int(max(0, -boxes[:, :2].min(), (boxes[:, 2] - h).max(), (boxes[:, 3] - w).max()))
    padded = F.pad(x, (m, m, m, m), value=fill)
    out = torch.stack([padded[i, :, t + m:b + m, l + m:r + m]
                       for i, (t, l, b, r) in enumerate(boxes.tolist())])
    return out[0] if single else out
