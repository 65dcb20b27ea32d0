"""The widget of the chapter "How features evolve" (Fig. 4): a layer and an epoch in one
view, each map's strongest activation above the image patch it comes from."""
from __future__ import annotations

from .controls import dropdown, slider
from .explorer import Explorer

__all__ = ["evolution_explorer"]


def evolution_explorer(ev, maps, *, preprocess=None, tiles=None,
                       width: int | None = 640) -> Explorer:
    """Pick a layer and slide through the snapshots: the projections of the strongest
    activation of some feature maps at that epoch (top row), above the image patches they
    come from (bottom row), as in Fig. 4.

    Args:
        ev: an :class:`~zfbook.evolution.Evolution` (:func:`zfbook.evolution.track`).
        maps: layer -> the feature maps shown (the same at every epoch).
        preprocess: the images' :class:`~zfbook.data.Preprocess`, to show them in colour.
        tiles: optional layer -> ``ev.project(layer, maps[layer])`` computed beforehand.

    Every view of the layer x epoch grid is precomputed for the static book.
    """
    import torch

    from .. import deconv
    from ..plot.evolution import strongest_view
    from ..plot.images import image_rgb

    maps = {layer: [int(m) for m in ms] for layer, ms in maps.items()}
    unknown = sorted(set(maps) - set(ev.layers))
    if unknown:
        raise ValueError(f"layers {unknown} were not tracked; layers are {', '.join(ev.layers)}")
    tiles = dict(tiles or {})
    for layer in maps:
        if layer not in tiles:
            tiles[layer] = ev.project(layer, maps[layer])

    def patch(layer, epoch, m):
        t = ev.top[epoch][layer]
        box = t.boxes(ev.models[epoch], [m])[0, 0]
        i = int(t.index[m, 0])
        if i < 0:  # the map fired on no image at this epoch: a white patch
            return torch.ones(3, int(box[2] - box[0]), int(box[3] - box[1]))
        rgb = image_rgb(ev.images[i], preprocess)
        return deconv.crop(torch.from_numpy(rgb).permute(2, 0, 1), box, fill=1.0)

    def render(layer, epoch):
        j = ev.epochs.index(epoch)
        return strongest_view(tiles[layer][j], [patch(layer, epoch, m) for m in maps[layer]],
                              [f"map {m}" for m in maps[layer]], f"{layer}, after epoch {epoch}")

    layers = list(maps)
    return Explorer(render, dropdown("layer", layers), slider("epoch", list(ev.epochs)),
                    max_views=len(layers) * len(ev.epochs), image_format="jpeg", width=width)
