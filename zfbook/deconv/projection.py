"""The forward pass with its switches, unpooling, the cropped and batched down pass, and the public
:func:`project`, :func:`switches` and :func:`steps`."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.grad import conv2d_input

from ..checks import finite_images, integer
from ..models import ConvNet
from .links import Link, _pair, _refuse, chain


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


def _seed(out: torch.Tensor, img, feat, loc, seed_with: str = "activation"
          ) -> tuple[_Window, torch.Tensor]:
    """Keep one activation per seed (the strongest of its map, or the one at ``loc``), or
    1 in its place (``seed_with="one"``)."""
    s = img.shape[0]
    ar = torch.arange(s, device=out.device)
    one = seed_with == "one"
    if out.dim() == 2:
        v = out[img, feat]
        sig = out.new_zeros(s, out.shape[1])
        sig[ar, feat] = torch.ones_like(v) if one else v
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
    sig[ar, feat, 0, 0] = torch.ones_like(v) if one else v
    return _Window(sig, (y, x), (y, x), (1, 1)), v


def _run_down(links, rec: _Record, img, feat, loc, crop: bool, record=None,
              seed_with: str = "activation") -> torch.Tensor:
    win, _ = _seed(rec.out, img, feat, loc, seed_with)
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
#: what a projection's down pass is seeded with (:func:`project`'s ``seed_with``)
SEEDS = ("activation", "one")


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
            index=None, crop: bool = True, batch_size: int = 64,
            seed_with: str = "activation") -> torch.Tensor:
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
        seed_with: ``"activation"`` (the paper's choice, Section 2.1): the kept activation
            goes down with its value; ``"one"``: it goes down as 1, whatever its value (the
            backward pass seeded with 1, as gradient methods are). For a positive
            activation ``a`` the ``"one"`` picture is the ``"activation"`` picture divided
            by ``a``; for a negative one (a logit, or a conv output before its ReLU) it is
            not a rescaling, as the rectifications on the way down keep the other half.

    Seeded with the activation's value, a projection of a rectified layer equals that value
    times the modified-backward gradient (ReLU's backward replaced by ReLU of the gradient)
    on paths without contrast normalisation; see :func:`gradient`.
    """
    if seed_with not in SEEDS:
        raise ValueError(f"unknown seed_with {seed_with!r}; choices are: {', '.join(SEEDS)}")
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
                                         None if p_loc is None else p_loc.to(dev), crop,
                                         seed_with=seed_with)
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
