"""Figures of ``python -m zfbook occlude`` (Fig. 7 for anyone's model and image): the three
maps of :func:`zfbook.occlusion.occlusion_maps` one per figure, and their overlay on the
image. The maps are drawn in image coordinates (:func:`zfbook.plot.placement_map`)."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .occlusion import class_map, placement_map, square_outline
from ..occlusion import drop_map

__all__ = ["activity_map", "probability_map", "top_class_map", "overlay"]


def _figure(image: np.ndarray, size: float, extra: float = 1.2):
    fig = Figure(figsize=(size + extra, size), layout="constrained")
    ax = fig.subplots()
    return fig, ax


def activity_map(maps, image: np.ndarray, size: float = 4.0) -> Figure:
    """Fig. 7b: the total activity of map ``maps.feature`` of ``maps.layer`` per placement."""
    fig, ax = _figure(image, size)
    mesh = placement_map(ax, maps, maps.activity.numpy(), shape=image.shape[:2], cmap="inferno")
    fig.colorbar(mesh, ax=ax, shrink=0.8)
    ax.set_title(f"(b) activity of {maps.layer} map {maps.feature}\n(unoccluded: {maps.activity0:.4g})",
                 fontsize=9)
    return fig


def probability_map(maps, image: np.ndarray, target_name: str, size: float = 4.0) -> Figure:
    """Fig. 7d: P(target class) per placement."""
    fig, ax = _figure(image, size)
    mesh = placement_map(ax, maps, maps.p_target.numpy(), shape=image.shape[:2], cmap="turbo",
                         vmin=0, vmax=1)
    fig.colorbar(mesh, ax=ax, shrink=0.8)
    ax.set_title(f"(d) P({target_name})\n(unoccluded: {maps.p_target0:.3f})", fontsize=9)
    return fig


def top_class_map(maps, image: np.ndarray, classes, size: float = 4.0) -> Figure:
    """Fig. 7e: the most probable class per placement, with a legend of those that occur."""
    fig, ax = _figure(image, size, extra=2.4)
    class_map(ax, maps, classes, shape=image.shape[:2])
    ax.set_title("(e) most probable class", fontsize=9)
    return fig


def overlay(maps, image: np.ndarray, target_name: str, size: float = 4.0) -> Figure:
    """The image with the drop of P(target) painted over it (per pixel, the mean drop of
    the squares covering it, :func:`zfbook.occlusion.drop_map`) and the square that lowers
    P(target) most outlined."""
    fig, ax = _figure(image, size)
    ax.imshow(image, interpolation="nearest")
    drop = drop_map(maps).numpy()
    top = max(float(np.nanmax(drop)) if np.isfinite(drop).any() else 0.0, 1e-12)
    im = ax.imshow(np.ma.masked_invalid(drop), cmap="magma", alpha=0.6, vmin=0, vmax=top,
                   interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.8)
    r, q = np.unravel_index(int(maps.p_target.argmin()), tuple(maps.p_target.shape))
    t, l = (int(v) for v in maps.positions[r, q])
    square_outline(ax, t, l, maps.patch)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"drop of P({target_name}) when covered", fontsize=9)
    return fig
