"""What each method's map explains, and the maps themselves (:func:`explain`).

The four methods (:data:`METHODS`) on the same quantity (:data:`TARGETS`): a class logit
at fc8 or one conv5 feature map; see :mod:`zfbook.sanity` for the exact semantics.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn

from .. import deconv
from ..models import ConvNet
from ..occlusion import IncrementalForward, pixel_average, placements

#: the explanation methods, by name
METHODS = ("deconvnet", "gradient", "guided_backprop", "occlusion")
#: what a map explains: a class logit at fc8, or one conv5 feature map
TARGETS = ("fc8", "conv5")


def _check(kind: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"unknown {kind} {value!r}; {kind}s are: {', '.join(choices)}")


def _check_model(model) -> None:
    if not isinstance(model, ConvNet):
        raise TypeError("sanity checks need a zfbook ConvNet (layers conv1…fc8), got "
                        f"{type(model).__name__}")



# ------------------------------------------------------------------ what is explained
@torch.no_grad()
def top_classes(model: nn.Module, images: torch.Tensor) -> list[int]:
    """The class each image is predicted as (the fc8 default)."""
    return model.eval()(images).argmax(1).tolist()


@torch.no_grad()
def top_features(model: nn.Module, images: torch.Tensor, k: int = 1) -> list:
    """Per image, the conv5 map(s) holding the strongest activation (the conv5 default):
    N ints for ``k=1``, else N lists of ``k`` maps, strongest first."""
    from ..models import activations
    act = activations(model.eval(), images, "conv5")["conv5"].flatten(2).amax(2)
    idx = act.topk(k, dim=1).indices
    return idx[:, 0].tolist() if k == 1 else idx.tolist()


def _strongest(model, images, features) -> list[tuple[int, int]]:
    """(y, x) of the strongest activation of each image's conv5 map in ``model``."""
    from ..models import activations
    with torch.no_grad():
        act = activations(model, images, "conv5")["conv5"]
    w = act.shape[-1]
    return [divmod(int(act[i, f].argmax()), w) for i, f in enumerate(features)]


def _captum(name: str):
    try:
        import captum.attr as attr
    except ImportError as e:  # pragma: no cover - captum is a dependency
        raise ImportError("the gradient and guided_backprop methods use Captum: "
                          "pip install 'captum>=0.7'") from e
    return getattr(attr, name)


def _deconvnet(model, images, target, which):
    if target == "conv5":
        return deconv.project(model, images, "conv5", which, _strongest(model, images, which))
    return deconv.project(model, images, "fc8", which, seed_with="one")  # a logit may be < 0


def _backprop(model, images, target, which, guided: bool):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # Captum's notes on in-place ReLUs and hooks
        if target == "fc8":
            method = _captum("GuidedBackprop" if guided else "Saliency")(model)
            kw = {} if guided else {"abs": False}
            return method.attribute(images.clone(), target=list(which), **kw).detach()
        cls = _captum("NeuronGuidedBackprop" if guided else "NeuronGradient")
        method = cls(model, model.features.conv5)   # pre-ReLU: same gradient where it fires
        locs = _strongest(model, images, which)
        return torch.cat([method.attribute(images[i:i + 1].clone(),
                                           neuron_selector=(f, *locs[i])).detach()
                          for i, f in enumerate(which)])


def _occlusion_drops(model, image, target, units, patch, stride) -> torch.Tensor:
    """One incremental sweep of ``image``: per pixel, the mean drop of each unit's
    quantity (fc8: the class logit; conv5: the map's total) over the squares covering it.
    Returns (len(units), H, W)."""
    h, w = image.shape[-2:]
    rows, cols = placements(h, patch, stride), placements(w, patch, stride)
    grid = torch.tensor([[(r, c) for c in cols] for r in rows], dtype=torch.long)
    engine = IncrementalForward(model, image, probe="conv5")
    logits, totals = engine.run(grid[..., 0].reshape(-1).numpy(),
                                grid[..., 1].reshape(-1).numpy(), patch)
    after, before = ((logits, engine.logits0) if target == "fc8"
                     else (totals, engine.probe_totals0))
    drop = before[units].double() - after[:, units].double()          # (placements, units)
    return torch.stack([pixel_average(drop[:, j].reshape(grid.shape[:2]), grid, patch)
                        for j in range(len(units))]).float()


def _occlusion(model, images, target, which, patch, stride):
    return torch.stack([_occlusion_drops(model, images[i], target, [f], patch, stride)[0]
                        for i, f in enumerate(which)])


def explain(model: nn.Module, images: torch.Tensor, method: str, target: str = "fc8",
            which=None, *, patch: int = 16, stride: int = 8) -> torch.Tensor:
    """One method's maps of ``images`` (N, C, H, W) for ``model`` (see the module docstring).

    ``target``: ``"fc8"`` (``which`` = N classes, default :func:`top_classes`) or
    ``"conv5"`` (``which`` = N feature maps, default :func:`top_features`). ``patch`` and
    ``stride`` are the occluding square's. Returns (N, C, H, W) for the backward methods
    and (N, H, W) for occlusion. The model runs in eval mode.
    """
    _check_model(model)
    _check("method", method, METHODS)
    _check("target", target, TARGETS)
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    model.eval()
    if which is None:
        which = top_classes(model, images) if target == "fc8" else top_features(model, images)
    which = [int(v) for v in torch.as_tensor(which).reshape(-1).tolist()]
    if len(which) != len(images):
        raise ValueError(f"which has {len(which)} entries for {len(images)} images")
    limit = model.num_classes if target == "fc8" else model.preset.widths[4]
    if any(not 0 <= v < limit for v in which):
        raise ValueError(f"which must be in 0…{limit - 1} for target {target!r}")
    if method == "deconvnet":
        return _deconvnet(model, images, target, which)
    if method == "occlusion":
        return _occlusion(model, images, target, which, patch, stride)
    return _backprop(model, images, target, which, guided=method == "guided_backprop")
