"""Maps in pixel space and their statistics: the mean drop per pixel and the share of it inside an
object's mask."""
from __future__ import annotations

import math

import torch
from torch import nn

from .sweep import KINDS, OcclusionMaps, occlusion_maps


# ---------------------------------------------------------------- maps in pixel space
def pixel_average(values: torch.Tensor, positions: torch.Tensor, patch: int,
                  shape: tuple[int, int] | None = None) -> torch.Tensor:
    """Per pixel, the mean of ``values`` (rows, cols) over the placements whose square
    covers that pixel; NaN where none does. ``shape`` defaults to the swept image's."""
    if shape is None:
        shape = (int(positions[-1, -1, 0]) + patch, int(positions[-1, -1, 1]) + patch)
    total = torch.zeros(shape, dtype=torch.float64)
    count = torch.zeros(shape, dtype=torch.float64)
    for (y, x), v in zip(positions.reshape(-1, 2).tolist(), values.reshape(-1).double().tolist()):
        total[y:y + patch, x:x + patch] += v
        count[y:y + patch, x:x + patch] += 1
    return torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, math.nan))


def attribution(maps: OcclusionMaps) -> torch.Tensor:
    """Captum's form of the P(target) map: per pixel, the mean of ``p_target0 − p_target``
    over the placements covering it (what ``captum.attr.Occlusion`` returns per channel)."""
    return pixel_average(maps.p_target0 - maps.p_target.double(), maps.positions, maps.patch)


def drop_map(maps: OcclusionMaps, kind: str = "probability") -> torch.Tensor:
    """Per pixel, the mean over the placements covering it of the probability drop
    ``max(0, p_target0 − p_target)`` (rises are ignored); NaN where no square reaches.
    ``kind`` measures the drop in log-probability or log-odds instead
    (:meth:`OcclusionMaps.target_map`), which still sees a drop where P rounds to 1."""
    values, value0 = maps.target_map(kind)
    drop = (value0 - values.double()).clamp_min(0)
    return pixel_average(drop, maps.positions, maps.patch)


def in_mask_share(maps: OcclusionMaps, mask: torch.Tensor, kind: str = "probability") -> float:
    """Share of the P(target)-drop mass that falls inside the object ``mask`` (Section 4.2).

    With ``drop`` from :func:`drop_map` (per pixel, the mean of ``max(0, p0 − p)`` over the
    placements covering it), ``share = Σ drop·mask / Σ drop`` over covered pixels. It is
    1 when only squares on the object lower the probability; compare it with
    :func:`mask_share_baseline`. NaN if no placement lowers the probability. ``kind``:
    the drop of :func:`drop_map`.
    """
    drop = drop_map(maps, kind)
    mask = _check_mask(mask, drop.shape)
    covered = ~torch.isnan(drop)
    d = torch.where(covered, drop, torch.zeros_like(drop))
    total = float(d.sum())
    return float((d * mask).sum()) / total if total > 0 else math.nan


def mask_share_baseline(maps: OcclusionMaps, mask: torch.Tensor) -> float:
    """The share a classifier indifferent to where the square lies would give: the mask's
    fraction of the covered pixels (a uniform drop map)."""
    covered = ~torch.isnan(pixel_average(torch.zeros(maps.positions.shape[:2]),
                                         maps.positions, maps.patch))
    mask = _check_mask(mask, covered.shape)
    return float((mask & covered).sum()) / float(covered.sum())


def in_mask_shares(model: nn.Module, images: torch.Tensor, labels, masks: torch.Tensor,
                   patch: int, stride: int, fill=None, kind: str | tuple = "probability"
                   ) -> tuple[torch.Tensor | dict[str, torch.Tensor], torch.Tensor]:
    """:func:`in_mask_share` and :func:`mask_share_baseline` for each of many images.

    ``images`` (N, C, H, W) are preprocessed, ``labels`` (N,) their true classes (the
    target), ``masks`` (N, H, W) their object masks in the same coordinates. Returns
    ``(shares, baselines)``, two (N,) float64 tensors; an image whose P(true) never drops
    gets NaN (use ``nanmean``); fewer do with ``kind="log_odds"``.

    ``kind`` may be a tuple of kinds (e.g. ``("probability", "log_odds")``): each image is
    swept once for all of them, and ``shares`` is a dict kind → (N,) shares, each equal to
    what ``kind=`` that kind alone gives.
    """
    kinds = tuple(dict.fromkeys(kind)) if isinstance(kind, (tuple, list)) else (kind,)
    if not kinds or any(k not in KINDS for k in kinds):
        raise ValueError(f"unknown kind {kind!r}; kinds are: {', '.join(KINDS)} "
                         "(one, or a tuple of them)")
    labels = torch.as_tensor(labels).reshape(-1)
    if not len(images) == len(labels) == len(masks):
        raise ValueError(f"{len(images)} images, {len(labels)} labels and {len(masks)} masks")
    shares, baselines = {k: [] for k in kinds}, []
    for x, label, mask in zip(images, labels.tolist(), masks):
        maps = occlusion_maps(model, x, int(label), patch, stride, fill, layer=None)
        for k in kinds:
            shares[k].append(in_mask_share(maps, mask, k))
        baselines.append(mask_share_baseline(maps, mask))
    shares = {k: torch.tensor(v, dtype=torch.float64) for k, v in shares.items()}
    return (shares[kind] if isinstance(kind, str) else shares,
            torch.tensor(baselines, dtype=torch.float64))


def _check_mask(mask, shape) -> torch.Tensor:
    mask = torch.as_tensor(mask).bool()
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"mask must have the image's shape {tuple(shape)} (the preprocessed "
                         f"crop), got {tuple(mask.shape)}")
    return mask
