"""The widget of the chapter "What the features respond to" (Fig. 2): a feature map's
strongest activations, each linked with its projection and the network's verdict."""
from __future__ import annotations

from .controls import dropdown, slider
from .explorer import Explorer

__all__ = ["top9_explorer"]


def top9_explorer(model, images, tops, maps, *, classes, labels, preprocess=None,
                  projections=None, static_per_layer: int = 2, static_ranks=(1, 5, 9),
                  width: int | None = 680, max_bytes: int = 2_000_000) -> Explorer:
    """Pick a feature map and one of its strongest activations (Fig. 2); see, together, the
    image with the unit's receptive field, the patch, the deconvnet projection and the
    network's class probabilities for that image.

    Chapter "What the features respond to". Each view is :func:`zfbook.plot.features.top_view`.

    Args:
        model: the network the search ran on (its ``forward`` gives the class scores).
        images: the preprocessed images the search ran on (N, C, H, W).
        tops: layer -> :class:`~zfbook.topk.TopK` over ``images``.
        maps: layer -> the feature maps offered (e.g. those Fig. 2 shows).
        classes: the class names; labels: the N images' classes (ints).
        preprocess: the images' :class:`~zfbook.data.Preprocess`, to show them in colour.
        projections: optional layer -> ``tops[layer].project(model, images, maps[layer])``
            computed beforehand (else computed here, one batched call per layer).
        static_per_layer: how many of each layer's maps the static book precomputes (the
            first ones); static_ranks: the ranks (1 = strongest) it precomputes.

    The class probabilities of every image in the offered top-k lists come from one batched
    forward pass.
    """
    import torch

    from ..plot.features import top_view
    from ..plot.images import image_rgb

    maps = {layer: [int(m) for m in ms] for layer, ms in maps.items()}
    unknown = sorted(set(maps) - set(tops))
    if unknown:
        raise ValueError(f"no top-k for layers {unknown}; layers are {', '.join(tops)}")
    entries = [(layer, int(m)) for layer in maps for m in maps[layer]]
    if not entries:
        raise ValueError("maps offers no feature map")
    k = min(tops[layer].k for layer in maps)
    if any(not 1 <= r <= k for r in static_ranks):
        raise ValueError(f"static_ranks must be between 1 and {k}")
    model.eval()
    projections = dict(projections or {})
    with torch.no_grad():
        for layer in maps:
            if layer not in projections:
                projections[layer] = tops[layer].project(model, images, maps[layer])
        need = sorted({int(i) for layer in maps
                       for i in tops[layer].index[maps[layer]].flatten() if i >= 0})
        probs = dict(zip(need, model(images[need]).softmax(1).tolist()))
    boxes = {layer: tops[layer].boxes(model, maps[layer]) for layer in maps}

    def render(entry, rank):
        layer, m = entries[entry]
        row = maps[layer].index(m)
        i = int(tops[layer].index[m, rank - 1])
        if i < 0:
            return top_view(image_rgb(images[0] * 0, None), None, None,
                            [0.0] * len(classes), classes, -1,
                            f"{layer} map {m} fired on fewer than {rank} images")
        value = float(tops[layer].value[m, rank - 1])
        caption = (f"{layer} map {m}, activation {rank} of {tops[layer].k} "
                   f"({value:.3g}): image {i}, a {classes[int(labels[i])]}")
        return top_view(image_rgb(images[i], preprocess), projections[layer][row, rank - 1],
                        boxes[layer][row, rank - 1].tolist(), probs[i], classes,
                        int(labels[i]), caption)

    static = [j for layer in maps
              for j in [n for n, (l, _) in enumerate(entries) if l == layer][:static_per_layer]]
    return Explorer(render,
                    dropdown("entry", range(len(entries)),
                             labels=[f"{l} map {m}" for l, m in entries], static=static,
                             label="feature map"),
                    slider("rank", range(1, k + 1), static=list(static_ranks),
                           label="activation"),
                    max_views=len(static) * len(static_ranks), max_bytes=max_bytes,
                    dpi=100, image_format="jpeg", width=width,
                    title="A map's strongest activations, with the network's verdict")
