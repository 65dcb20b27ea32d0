"""The widget of the chapter "The deconvnet" (Section 2.1, Fig. 1): the deconvnet, one
activation at a time, for any layer, feature map and image."""
from __future__ import annotations

from .controls import dropdown, slider
from .explorer import Explorer

__all__ = ["deconv_explorer"]


def deconv_explorer(model, images, layers=None, *, preprocess=None, names=None,
                    static_maps=None, static_images=None, n_static_maps: int = 6,
                    width: int | None = 720, max_bytes: int = 3_000_000) -> Explorer:
    """Pick a layer, a feature map and an image; see the deconvnet projection of that map's
    strongest activation in the image beside the image and its patch (Section 2.1, Fig. 2).

    Chapter "The deconvnet". Each view is :func:`zfbook.plot.projection_view`:
    the image with the unit's receptive field, the projection, and both cut to the field.
    A map that does not fire on the image (all activations ≤ 0) is reported as silent.

    Args:
        model: a zfbook model (layers ``conv1``…) or any model :func:`zfbook.deconv.project`
            accepts (layers named by ``named_modules()``).
        images: preprocessed images (N, C, H, W), as the model takes them.
        layers: the layers offered (default ``conv1``…``conv5`` for zfbook models).
        preprocess: the images' :class:`~zfbook.data.Preprocess`, to show them in colour.
        names: optional N labels for the images (e.g. their classes).
        static_maps: the feature maps precomputed for the static book (the same for every
            layer, so each must exist in all of them); default: the ``n_static_maps`` maps
            that fire on the most (layer, static image) pairs, so that few precomputed views
            are blank. Live, the slider covers every map of the largest layer; past the end of
            a smaller layer the view says so.
        static_images: indices into ``images`` precomputed for the static book (default
            the first 4).
        width: display width in CSS pixels.

    The static views are computed in one batched :func:`~zfbook.deconv.project` call per
    layer; live, each new choice costs one forward and one (cropped) down pass.
    """
    import torch

    from .. import deconv, plot
    from ..models import ConvNet, activations

    if images.dim() != 4:
        raise ValueError(f"images must be a batch (N, C, H, W), got shape {tuple(images.shape)}")
    n = images.shape[0]
    if layers is None:
        if not isinstance(model, ConvNet):
            raise ValueError("layers is required for models other than zfbook's "
                             "(module names from named_modules())")
        layers = ("conv1", "conv2", "conv3", "conv4", "conv5")
    layers = [layers] if isinstance(layers, str) else list(layers)
    names = [str(i) for i in range(n)] if names is None else [str(x) for x in names]
    if len(names) != n:
        raise ValueError(f"{len(names)} names for {n} images")
    static_images = list(range(min(4, n))) if static_images is None else \
        [int(i) for i in static_images]
    if any(not 0 <= i < n for i in static_images):
        raise ValueError(f"static_images must be between 0 and {n - 1}")
    model.eval()
    x = images[static_images]
    with torch.no_grad():
        acts = activations(model, x, layers)  # the static images, every layer
    n_maps = {}
    for l in layers:
        if acts[l].dim() != 4:
            raise ValueError(f"layer {l!r} has no feature maps (output {tuple(acts[l].shape)}); "
                             f"choose convolutional layers")
        n_maps[l] = acts[l].shape[1]
    fewest = min(n_maps.values())
    if static_maps is None:  # the maps that fire on the most (layer, static image) pairs
        fires = sum((acts[l][:, :fewest].flatten(2).amax(2) > 0).sum(0) for l in layers)
        order = sorted(range(fewest), key=lambda m: (-int(fires[m]), m))
        static_maps = sorted(order[:max(1, min(n_static_maps, fewest))])
    static_maps = [int(m) for m in static_maps]
    if any(not 0 <= m < fewest for m in static_maps):
        raise ValueError(f"static_maps must be between 0 and {fewest - 1}, the maps every "
                         f"layer has ({', '.join(f'{l}: {c}' for l, c in n_maps.items())})")
    shown = {i: plot.image_rgb(images[i], preprocess) for i in static_images}
    cache: dict[tuple, tuple] = {}  # (layer, map, image) -> (value, (y, x), projection or None)

    def remember(layer, i, acts, maps, proj):
        """acts (K, H, W) and proj (K, C, H, W): the maps ``maps`` of image ``i``."""
        for j, f in enumerate(maps):
            a = acts[j]
            flat = a.flatten()
            pos = int(flat.argmax())
            v = float(flat[pos])
            loc = (pos // a.shape[-1], pos % a.shape[-1])
            cache[layer, f, i] = (v, loc, proj[j] if v > 0 else None)

    with torch.no_grad():  # the static grid: one batched down pass per layer
        for layer in layers:
            proj = deconv.project(model, x, layer, [static_maps] * len(static_images))
            for r, i in enumerate(static_images):
                remember(layer, i, acts[layer][r][static_maps], static_maps, proj[r])

    def entry(layer, feature, image):
        key = (layer, feature, image)
        if key not in cache:  # live: one image, one map
            with torch.no_grad():
                a = activations(model, images[image:image + 1], layer)[layer][0]
                p = deconv.project(model, images[image:image + 1], layer, feature)
            remember(layer, image, a[[feature]], [feature], p)
        return cache[key]

    def render(layer, feature, image):
        if image not in shown:
            shown[image] = plot.image_rgb(images[image], preprocess)
        rgb = shown[image]
        what = f"image {names[image]}" if names[image] != str(image) else f"image {image}"
        if feature >= n_maps[layer]:
            return plot.projection_view(rgb, None, None, f"{layer} has {n_maps[layer]} maps "
                                                         f"(0 to {n_maps[layer] - 1}): no map {feature}")
        v, loc, proj = entry(layer, feature, image)
        if proj is None:
            return plot.projection_view(rgb, None, None, f"{layer} map {feature} is silent on "
                                                         f"{what}: its largest activation is {v:.3g}")
        box = deconv.receptive_field(model, layer, loc)
        side = box[2] - box[0]
        return plot.projection_view(rgb, proj, box, f"{layer} map {feature} on {what}: "
                                                    f"strongest activation {v:.3g} at {loc}, "
                                                    f"field {side}x{side} px")

    labels = [f"{i}: {names[i]}" if names[i] != str(i) else str(i) for i in range(n)]
    return Explorer(render, dropdown("layer", layers),
                    slider("feature", range(max(n_maps.values())), static=static_maps,
                           label="feature map"),
                    slider("image", range(n), static=static_images, labels=labels),
                    max_views=len(layers) * len(static_maps) * len(static_images),
                    max_bytes=max_bytes, image_format="jpeg", width=width,
                    title="The deconvnet, one activation at a time")
