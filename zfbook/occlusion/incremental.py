"""Incremental inference: :class:`IncrementalForward` recomputes only the window of each layer that a
square can change."""
from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..checks import finite_images, integer
from ..models import ConvNet, layer_module, layer_names
from .square import _check_patch_stride, _fill_image


_POINTWISE = (nn.ReLU, nn.LeakyReLU, nn.LocalResponseNorm, nn.Dropout, nn.Identity,
              nn.BatchNorm2d)

# ---------------------------------------------------------------- the chain
def _chain(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model as a list of (name, leaf module) applied in order."""
    if isinstance(model, ConvNet):
        parts = [("features", model.features), ("flatten", model.flatten),
                 ("classifier", model.classifier)]
    elif isinstance(model, nn.Sequential):
        parts = list(model.named_children())
    else:
        raise TypeError("occlusion needs a chain model: a zfbook ConvNet or an nn.Sequential, "
                        f"got {type(model).__name__}")
    out = []
    for name, m in parts:
        if isinstance(m, nn.Sequential):
            out += [(f"{name}.{n}", c) for n, c in _chain(m)]
        else:
            out.append((name, m))
    return out


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


@dataclass
class _Geometry:
    """Spatial geometry of one step before the flatten."""
    kind: str            # "window" (conv / max-pool), "point" (pixel-wise) or "dense"
    k: tuple = (1, 1)
    s: tuple = (1, 1)
    p: tuple = (0, 0)
    d: tuple = (1, 1)
    pad_value: float = 0.0


def _geometry(m: nn.Module) -> _Geometry:
    if isinstance(m, nn.Conv2d) and m.padding_mode == "zeros" and not isinstance(m.padding, str):
        return _Geometry("window", _pair(m.kernel_size), _pair(m.stride), _pair(m.padding),
                         _pair(m.dilation), 0.0)
    if isinstance(m, nn.MaxPool2d) and not m.return_indices:
        return _Geometry("window", _pair(m.kernel_size), _pair(m.stride or m.kernel_size),
                         _pair(m.padding), _pair(m.dilation), -math.inf)
    if isinstance(m, _POINTWISE):
        return _Geometry("point")
    return _Geometry("dense")


def _apply(m: nn.Module, x: torch.Tensor, geom: _Geometry | None = None) -> torch.Tensor:
    """Run one module, never in place; window steps on a crop that already holds the padding."""
    if isinstance(m, nn.ReLU):
        return F.relu(x)
    if geom is not None and geom.kind == "window":
        if isinstance(m, nn.Conv2d):
            return F.conv2d(x, m.weight, m.bias, m.stride, 0, m.dilation, m.groups)
        return F.max_pool2d(x, m.kernel_size, m.stride, 0, m.dilation, False)
    return m(x)


@dataclass
class _Plan:
    """Per step: window start (N, 2) and window size (2,) of the recomputed output."""
    starts: list
    sizes: list
    full: list


def _step_interval(lo, hi, n_out, g: _Geometry, axis: int):
    k, s, p, d = g.k[axis], g.s[axis], g.p[axis], g.d[axis]
    lo_o = -((-(lo + p - d * (k - 1))) // s)      # ceil division
    hi_o = (hi + p) // s
    return np.clip(lo_o, 0, n_out - 1), np.clip(hi_o, 0, n_out - 1)


# ---------------------------------------------------------------- incremental forward
class IncrementalForward:
    """Forward passes of one image with a square occluded, reusing the unoccluded activations.

    ``IncrementalForward(model, image, probe="conv5")`` runs ``image`` (C, H, W) once and
    caches every layer. :meth:`run` then evaluates many placements of a square in batches
    and returns their logits and the per-map totals of the ``probe`` layer. It is exact:
    equal, to float rounding, to ``model(occlude(image, y, x, size, fill))``.
    :meth:`probabilities` is the one-square path of the occlusion widget.
    """

    def __init__(self, model: nn.Module, image: torch.Tensor, probe: str | None = "conv5"):
        if image.dim() == 4 and image.shape[0] == 1:
            image = image[0]
        if image.dim() != 3:
            raise ValueError(f"image must be one (C, H, W) tensor, got shape {tuple(image.shape)}")
        finite_images("image", image)
        self.model = model
        self.steps = _chain(model)
        device = next(model.parameters()).device
        self.image = image.detach().to(device=device, dtype=torch.float32)
        self.probe_index = None if probe is None else self._probe_index(probe)
        self.probe = probe
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                self._cache_forward()
                reference = model(self.image[None])[0]
        finally:
            model.train(was_training)
        tol = 1e-4 * float(reference.abs().max()) + 1e-6
        if not torch.allclose(reference, self.logits0, rtol=1e-4, atol=tol):
            raise TypeError("the model's forward is not the chain of its modules; occlusion "
                            "needs a chain model (a zfbook ConvNet or an nn.Sequential)")

    def _probe_index(self, layer: str) -> int:
        target = layer_module(self.model, layer)
        for i, (_, m) in enumerate(self.steps):
            if m is target:
                return i
        raise ValueError(f"layer {layer!r} is not in the model's chain; layers are: "
                         f"{', '.join(layer_names(self.model))}")

    def _cache_forward(self) -> None:
        x = self.image[None]
        self.cache, self.geoms = [], []
        spatial = True
        for _, m in self.steps:
            if isinstance(m, nn.Flatten) or x.dim() != 4:
                spatial = False
            g = _geometry(m) if spatial else None
            x = _apply(m, x)
            if spatial and x.dim() != 4:
                spatial, g = False, None
            self.cache.append(x[0])
            self.geoms.append(g)
        self.logits0 = x[0]
        self._first_dense = next((i for i, g in enumerate(self.geoms) if g is None),
                                 len(self.steps))
        self._buffers = {}
        if self.logits0.dim() != 1:
            raise TypeError(f"the model must output a vector of class scores, got shape "
                            f"{tuple(self.logits0.shape)}")
        # channels-last, flattened, padded copies of every map that feeds a window step
        self._padded = {}
        for i, g in enumerate(self.geoms):
            if g is not None and g.kind == "window":
                src = self._source(i - 1)
                h, w = src.shape[-2:]
                oh, ow = self.cache[i].shape[-2:]
                pr_h = max(g.p[0], (oh - 1) * g.s[0] + g.d[0] * (g.k[0] - 1) + 1 - h - g.p[0])
                pr_w = max(g.p[1], (ow - 1) * g.s[1] + g.d[1] * (g.k[1] - 1) + 1 - w - g.p[1])
                padded = F.pad(src, (g.p[1], pr_w, g.p[0], pr_h), value=g.pad_value)
                self._padded[i] = (_channels_last(padded), padded.shape[-1])
        if self.probe_index is not None:
            self.probe0 = self.cache[self.probe_index]
            self.probe_totals0 = (self.probe0.sum(dim=(-2, -1)) if self.probe0.dim() == 3
                                  else self.probe0)
            if self.probe0.dim() == 3:   # summed-area table for window sums of the cache
                self._probe_sat = F.pad(self.probe0.double().cumsum(1).cumsum(2), (1, 0, 1, 0))

    @property
    def num_classes(self) -> int:
        return int(self.logits0.numel())

    def plan(self, tops, lefts, size: int) -> _Plan:
        """Which window of every spatial layer the squares at (tops, lefts) can change.

        The affected interval of an output of kernel k, stride s, padding p, dilation d is
        ``[ceil((lo + p − d(k − 1)) / s), floor((hi + p) / s)]`` for an affected input
        interval ``[lo, hi]``; the window is the largest such interval over the batch,
        shifted to stay inside the map."""
        tops, lefts = np.asarray(tops, dtype=np.int64), np.asarray(lefts, dtype=np.int64)
        lo = [tops, lefts]
        hi = [tops + size - 1, lefts + size - 1]
        starts, sizes, full = [], [], []
        for i, g in enumerate(self.geoms):
            if g is None:
                break
            out_hw = self.cache[i].shape[-2:]
            if g.kind == "dense":
                lo = [np.zeros_like(tops), np.zeros_like(lefts)]
                hi = [np.full_like(tops, out_hw[0] - 1), np.full_like(lefts, out_hw[1] - 1)]
            elif g.kind == "window":
                lo_hi = [_step_interval(lo[a], hi[a], out_hw[a], g, a) for a in (0, 1)]
                lo, hi = [lo_hi[0][0], lo_hi[1][0]], [lo_hi[0][1], lo_hi[1][1]]
            size_hw = tuple(int(max(1, (hi[a] - lo[a] + 1).max())) for a in (0, 1))
            start = np.stack([np.clip(lo[a], 0, out_hw[a] - size_hw[a]) for a in (0, 1)], 1)
            starts.append(start)
            sizes.append(size_hw)
            full.append(size_hw == tuple(out_hw))
        return _Plan(starts, sizes, full)

    def flops_fraction(self, tops, lefts, size: int) -> float:
        """Multiply-adds of the incremental pass over those of full passes (conv and fc)."""
        plan = self.plan(tops, lefts, size)
        full = inc = 0
        for i, (_, m) in enumerate(self.steps):
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                per_out = m.weight[0].numel()
                out = self.cache[i]
                n_full = out.numel()
                n_inc = (out.shape[0] * plan.sizes[i][0] * plan.sizes[i][1]
                         if i < len(plan.sizes) else n_full)
                full += per_out * n_full
                inc += per_out * n_inc
        return inc / full

    # -- evaluation
    @torch.no_grad()
    def run(self, tops, lefts, size: int, fill=None, batch: int = 64, progress: bool = False):
        """Logits (N, classes) and probe totals (N, maps) for squares of side ``size`` at
        top-left corners ``(tops[n], lefts[n])``, filled with ``fill``.

        The spatial layers run ``batch`` placements at a time (small windows stay in the
        CPU cache); the dense layers then run on all of them at once (their weights are
        read once). ``progress``: a progress bar over the batches."""
        batch = integer("batch", batch, 1)
        tops = np.asarray(tops, dtype=np.int64).ravel()
        lefts = np.asarray(lefts, dtype=np.int64).ravel()
        h, w = self.image.shape[-2:]
        _check_patch_stride(min(h, w), size, 1)
        if len(tops) != len(lefts) or len(tops) == 0:
            raise ValueError("tops and lefts must be non-empty and of the same length")
        if min(tops.min(), lefts.min()) < 0 or tops.max() > h - size or lefts.max() > w - size:
            raise ValueError(f"squares of side {size} must lie inside the {h}×{w} image; "
                             f"valid corners are y in 0…{h - size}, x in 0…{w - size}")
        fill = _fill_image(fill, self.image)
        was_training = self.model.training
        self.model.eval()
        try:
            feats, probes = [], []
            for b0 in tqdm(range(0, len(tops), batch), desc="occluding", unit="batch",
                           disable=not progress, leave=False):
                f, pr = self._run_spatial(tops[b0:b0 + batch], lefts[b0:b0 + batch], size, fill)
                feats.append(f)
                probes.append(pr)
            probe = torch.cat(probes) if probes[0] is not None else None
            logits, dense_probes = [], []
            for x in torch.cat(feats).split(1024):
                for i in range(self._first_dense, len(self.steps)):
                    x = _apply(self.steps[i][1], x)
                    if i == self.probe_index:
                        dense_probes.append(x.clone())
                logits.append(x)
            logits = torch.cat(logits)
            if dense_probes:
                probe = torch.cat(dense_probes)
        finally:
            self.model.train(was_training)
        return logits, probe

    def probabilities(self, y: int, x: int, size: int, fill=None) -> torch.Tensor:
        """Class probabilities (classes,) with one square at (y, x): the widget's path."""
        logits, _ = self.run([y], [x], size, fill)
        return torch.softmax(logits[0], dim=0)

    def _run_spatial(self, tops, lefts, size, fill):
        """The spatial layers for a batch of placements: the full maps that enter the first
        dense layer, and the probe totals if the probe is spatial."""
        plan = self.plan(tops, lefts, size)
        # the input window: the square itself
        rows = torch.as_tensor(tops[:, None] + np.arange(size), device=fill.device)
        cols = torch.as_tensor(lefts[:, None] + np.arange(size), device=fill.device)
        x = fill.expand_as(self.image)[:, rows[:, :, None], cols[:, None, :]].transpose(0, 1)
        start = np.stack([tops, lefts], 1)
        win = (size, size)
        probe = None
        for i in range(self._first_dense):
            m, g = self.steps[i][1], self.geoms[i]
            if g.kind == "point":
                x = _apply(m, x)
            elif g.kind == "window":
                x = self._window_step(i, m, g, x, start, win, plan)
                start, win = plan.starts[i], plan.sizes[i]
            else:  # an unknown spatial module: run it on the full maps
                x = _apply(m, self._paste(i - 1, x, start, win))
                start, win = plan.starts[i], plan.sizes[i]
            if i == self.probe_index:
                probe = self._probe_totals(x, start, win)
        # leaving the spatial part: paste the windows into the full maps
        return self._paste(self._first_dense - 1, x, start, win), probe

    def _source(self, i):
        return self.image if i < 0 else self.cache[i]

    def _paste(self, i, x, start, win):
        """Full maps of step ``i``'s output: the cache with each placement's window pasted."""
        src = self._source(i)
        if tuple(win) == tuple(src.shape[-2:]):
            return x.contiguous()
        h, w = src.shape[-2:]
        flat = _channels_last(src)
        both = torch.cat([flat, x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])])
        return _gather(both, len(flat), w, x.shape, start, (0, 0), np.zeros_like(start),
                       (h, w)).contiguous()

    def _window_step(self, i, m, g, x, start, win, plan):
        """Recompute step ``i``'s output window from the padded cached input and ``x``,
        the previous step's window (placed at ``start`` with size ``win``)."""
        src_flat, src_w = self._padded[i]
        o_start, o_size = plan.starts[i], plan.sizes[i]
        # input rows/cols read by the output window, in padded coordinates
        length = [(o_size[a] - 1) * g.s[a] + g.d[a] * (g.k[a] - 1) + 1 for a in (0, 1)]
        in_hw = tuple(self._source(i - 1).shape[-2:])
        if plan.full[i] and tuple(win) == in_hw:       # dense from here: just pad
            ph, pw = g.p
            crop = F.pad(x, (pw, max(0, length[1] - pw - in_hw[1]), ph,
                             max(0, length[0] - ph - in_hw[0])), value=g.pad_value)
            return _apply(m, crop[..., :length[0], :length[1]], g)
        # one buffer per step: the padded cached map, then this batch's windows
        n_src, need = len(src_flat), x.shape[0] * x.shape[2] * x.shape[3]
        both = self._buffers.get(i)
        if both is None or len(both) < n_src + need:
            both = torch.empty(n_src + need, x.shape[1], dtype=x.dtype, device=x.device)
            both[:n_src] = src_flat
            self._buffers[i] = both
        both[n_src:n_src + need].view(x.shape[0], x.shape[2], x.shape[3], x.shape[1]).copy_(
            x.permute(0, 2, 3, 1))
        crop = _gather(both, n_src, src_w, x.shape, start, g.p, o_start * np.asarray(g.s), length)
        return _apply(m, crop, g)

    def _probe_totals(self, x, start, win):
        i = self.probe_index
        if tuple(win) == tuple(self.cache[i].shape[-2:]):
            return x.sum(dim=(-2, -1))
        sat = self._probe_sat
        r, c = (torch.as_tensor(v, device=sat.device) for v in (start[:, 0], start[:, 1]))
        h, w = win
        cached = sat[:, r + h, c + w] - sat[:, r, c + w] - sat[:, r + h, c] + sat[:, r, c]
        return (self.probe_totals0.double() + x.sum(dim=(-2, -1)).double() - cached.T).to(x.dtype)


def _channels_last(t: torch.Tensor) -> torch.Tensor:
    """(C, H, W) → (H·W, C)."""
    return t.permute(1, 2, 0).reshape(-1, t.shape[0]).contiguous()


def _gather(both, n_src, src_w, x_shape, prev_start, pad, crop_start, crop_size):
    """Crops (B, C, h, w) of a padded map, with the previous window pasted in.

    ``both`` holds, channels-last, the padded cached map (its first ``n_src`` rows, row
    width ``src_w``) followed by each placement's recomputed window of that map (shape
    ``x_shape`` = (B, C, Wh, Ww)), whose top-left is ``prev_start`` (B, 2) in unpadded
    coordinates (``pad`` = the padding above and left). The crops start at ``crop_start``
    (B, 2) in padded coordinates. One index_select does it all.
    """
    b, c, wh, ww = x_shape
    h, w = crop_size
    rows = crop_start[:, 0, None] + np.arange(h)                       # (B, h), padded
    cols = crop_start[:, 1, None] + np.arange(w)
    rr = rows - (prev_start[:, 0, None] + pad[0])                      # row in the window
    cc = cols - (prev_start[:, 1, None] + pad[1])
    inside = ((rr >= 0) & (rr < wh))[:, :, None] & ((cc >= 0) & (cc < ww))[:, None, :]
    in_window = n_src + ((np.arange(b)[:, None, None] * wh + rr[:, :, None]) * ww
                         + cc[:, None, :])
    idx = np.where(inside, in_window, rows[:, :, None] * src_w + cols[:, None, :])
    out = both.index_select(0, torch.from_numpy(idx.reshape(-1)).to(both.device))
    return out.view(b, h, w, c).permute(0, 3, 1, 2)
