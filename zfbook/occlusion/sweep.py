"""The sweep: :func:`occlusion_maps` returns the three maps of Fig. 7 (:class:`OcclusionMaps`)."""
from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..checks import integer
from .incremental import IncrementalForward, _apply
from .square import _check_patch_stride, _fill_image, placements


#: ``method`` choices of :func:`occlusion_maps`
METHODS = ("incremental", "batched")

#: ``kind`` choices of :meth:`OcclusionMaps.target_map`
KINDS = ("probability", "log_probability", "log_odds")


def log_probability(logits: torch.Tensor, target: int) -> torch.Tensor:
    """log P(``target``) of each row of ``logits`` (…, classes), float64, from the logits:
    ``−softplus(a)`` with ``a = logsumexp(others) − logit(target)``, written
    ``−(max(a, 0) + log1p(exp(−|a|)))`` so that a probability that rounds to 1 keeps its
    distance from 1 (log P ≈ −e^a) instead of the 0 of ``x − logsumexp(x)``."""
    z = logits.double()
    others = torch.cat([z[..., :target], z[..., target + 1:]], dim=-1)
    a = torch.logsumexp(others, dim=-1) - z[..., target]
    return -(a.clamp_min(0) + torch.log1p(torch.exp(-a.abs())))


def _log_odds(log_p: torch.Tensor) -> torch.Tensor:
    """log P − log(1 − P) from log P, without forming P."""
    return log_p - torch.log(-torch.expm1(log_p))


# ---------------------------------------------------------------- the sweep
@dataclass
class OcclusionMaps:
    """The maps of Fig. 7 for one image, indexed by placement (row, col) of the square.

    ``activity`` — total activation of map ``feature`` of ``layer`` (Fig. 7b);
    ``p_target`` — softmax probability of class ``target`` (Fig. 7d);
    ``top_class`` — the most probable class (Fig. 7e);
    ``positions`` — (rows, cols, 2) top-left corner (y, x) of each placement;
    ``activity0``, ``p_target0``, ``top_class0`` — the same for the unoccluded image;
    ``log_p_target``, ``log_p_target0`` — log P(target) (float64, :func:`log_probability`),
    for a classifier so sure that P rounds to 1 under most placements and map (d) is flat.
    :meth:`target_map` gives (d) as a probability, log-probability or log-odds.
    """
    activity: torch.Tensor | None
    p_target: torch.Tensor
    top_class: torch.Tensor
    positions: torch.Tensor
    patch: int
    stride: int
    target: int
    layer: str | None
    feature: int | None
    activity0: float
    p_target0: float
    top_class0: int
    log_p_target: torch.Tensor | None = None
    log_p_target0: float = math.nan

    def target_map(self, kind: str = "probability") -> tuple[torch.Tensor, float]:
        """Map (d) and its unoccluded value as ``kind``: ``"probability"`` (``p_target``),
        ``"log_probability"`` (log P, ≈ P − 1 near 1, so still flat where P saturates to
        the eye) or ``"log_odds"`` (log P − log(1 − P), which spreads P ≈ 1 out: 1 − 10⁻⁹
        is 20.7, 1 − 10⁻³ is 6.9; from log P by ``log(−expm1(log P))``)."""
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; kinds are: {', '.join(KINDS)}")
        if kind == "probability":
            return self.p_target, self.p_target0
        if self.log_p_target is None:
            raise ValueError("these maps carry no log-probabilities; make them with "
                             "occlusion_maps, or use kind='probability'")
        if kind == "log_probability":
            return self.log_p_target, self.log_p_target0
        lp0 = torch.tensor(self.log_p_target0, dtype=torch.float64)
        return _log_odds(self.log_p_target), float(_log_odds(lp0))

    @property
    def image_shape(self) -> tuple[int, int]:
        """(H, W) the squares were placed in (the last corner plus the patch)."""
        corner = self.positions[-1, -1]
        return (int(corner[0]) + self.patch, int(corner[1]) + self.patch)


def occlusion_maps(model: nn.Module, image: torch.Tensor, target: int, patch: int, stride: int,
                   fill=None, layer: str | None = "conv5", feature: int | None = None, *,
                   method: str = "incremental", batch: int = 64, progress: bool = False) -> OcclusionMaps:
    """Slide a square of side ``patch`` over ``image`` with ``stride`` (Fig. 7).

    ``image`` is one preprocessed (C, H, W) tensor; ``fill`` is the square's value (a
    number, a (C,) colour or a (C, H, W) image), by default 0 — the training mean once it
    is subtracted, the paper's grey. Corners run ``0, stride, …`` plus the edge position
    (see :func:`placements`). ``feature`` is the map of ``layer`` whose total activation is
    recorded; by default the map holding the strongest single activation of the unoccluded
    image; ``layer=None`` skips the activity map (``activity`` is then None). ``method`` is
    ``"incremental"`` (see the module docstring) or ``"batched"`` (full forward passes,
    ``batch`` occluded images at a time); both give the same maps. ``progress``: a
    progress bar over the batches.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; methods are: {', '.join(METHODS)}")
    if image.dim() == 4 and image.shape[0] == 1:
        image = image[0]
    if image.dim() != 3:
        raise ValueError(f"image must be one (C, H, W) tensor, got shape {tuple(image.shape)}")
    h, w = image.shape[-2:]
    _check_patch_stride(min(h, w), patch, stride)
    batch = integer("batch", batch, 1)
    engine = IncrementalForward(model, image, probe=layer)
    k = engine.num_classes
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or not 0 <= target < k:
        raise ValueError(f"target {target!r} is out of range; valid targets are 0…{k - 1}")
    if layer is None:
        feature = None
    elif feature is None:
        p0 = engine.probe0
        strongest = p0.reshape(p0.shape[0], -1).amax(1) if p0.dim() == 3 else p0
        feature = int(strongest.argmax())
    elif isinstance(feature, bool) or not isinstance(feature, (int, np.integer)) or \
            not 0 <= feature < engine.probe_totals0.numel():
        raise ValueError(f"feature {feature!r} is out of range; {layer} has maps "
                         f"0…{engine.probe_totals0.numel() - 1}")
    rows, cols = placements(h, patch, stride), placements(w, patch, stride)
    grid = torch.tensor([[(r, c) for c in cols] for r in rows], dtype=torch.long)
    tops, lefts = grid[..., 0].reshape(-1).numpy(), grid[..., 1].reshape(-1).numpy()
    if method == "incremental":
        logits, probes = engine.run(tops, lefts, patch, fill, batch, progress)
        activity = None if layer is None else probes[:, feature]
    else:
        logits, activity = _batched(engine, tops, lefts, patch, fill, batch, feature, progress)
    probs = torch.softmax(logits, dim=1)
    probs0 = torch.softmax(engine.logits0, dim=0)
    shape = (len(rows), len(cols))
    return OcclusionMaps(
        activity=None if activity is None else activity.reshape(shape).cpu(),
        p_target=probs[:, target].reshape(shape).cpu(),
        top_class=probs.argmax(1).reshape(shape).cpu(), positions=grid, patch=int(patch),
        stride=int(stride), target=int(target), layer=layer, feature=feature,
        activity0=math.nan if layer is None else float(engine.probe_totals0[feature]),
        p_target0=float(probs0[target]),
        top_class0=int(probs0.argmax()),
        log_p_target=log_probability(logits, target).reshape(shape).cpu(),
        log_p_target0=float(log_probability(engine.logits0, target)))


@torch.no_grad()
def _batched(engine: IncrementalForward, tops, lefts, patch, fill, batch, feature, progress=False):
    """Plain sweep: full forward passes of the occluded images, ``batch`` at a time."""
    model, image = engine.model, engine.image
    fill = _fill_image(fill, image).expand_as(image)
    was_training = model.training
    model.eval()
    logits, activity = [], []
    try:
        for b0 in tqdm(range(0, len(tops), batch), desc="occluding", unit="batch",
                       disable=not progress, leave=False):
            xs = image.expand(len(tops[b0:b0 + batch]), *image.shape).clone()
            for j, (t, l) in enumerate(zip(tops[b0:b0 + batch], lefts[b0:b0 + batch])):
                xs[j, :, t:t + patch, l:l + patch] = fill[:, t:t + patch, l:l + patch]
            for i, (_, m) in enumerate(engine.steps):
                xs = _apply(m, xs)
                if i == engine.probe_index:
                    act = xs[:, feature]
                    activity.append(act.sum(dim=(-2, -1)) if act.dim() == 3 else act.clone())
            logits.append(xs)
    finally:
        model.train(was_training)
    return torch.cat(logits), (torch.cat(activity) if activity else None)
