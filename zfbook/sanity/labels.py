"""The data-randomisation test (Adebayo et al. 2018, Section 4): :func:`data_randomisation`.

A network of the same architecture, trained on the same images with their labels
shuffled, can only memorise: nothing in an image tells its label. If a method draws
nearly the same map for it as for the network trained on the true labels, the map does
not depend on the relation between images and labels that the network learned.

What each pair of maps explains:

* ``target="fc8"``: the same class in both networks (default: the class the *trained*
  network predicts; pass the true labels as ``which`` to explain those). For the
  shuffled-label network, class ``c`` is the label it learned to give to the images that
  were shuffled into ``c``.
* ``target="conv5"``: each network's own most active conv5 map of the image (default).
  Feature map ``f`` of one network has no counterpart ``f`` in a network trained apart
  from it, so the same index would compare unrelated units. A ``which`` that is given
  applies to both networks.

The result is a :class:`~zfbook.sanity.Randomisation` with ``mode="data"`` and two steps,
the trained network (step 0) and the shuffled-label one (labelled ``shuffled labels``):
``scores[method][measure][1]`` holds each image's similarity, ``maps[method]`` the two
networks' maps, so :func:`~zfbook.sanity.null` and :mod:`zfbook.plot.sanity` accept it.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .methods import METHODS, TARGETS, _check, _check_model
from .similarity import MEASURES
from .weights import Randomisation, _check_run, _compare, _default_which, _explain_all

#: the step that names the shuffled-label network in a data-randomisation result
SHUFFLED = ("shuffled labels",)


def data_randomisation(trained: nn.Module, shuffled: nn.Module, images: torch.Tensor, *,
                       target: str = "fc8", methods=METHODS, which=None, patch: int = 16,
                       stride: int = 8, measures=MEASURES) -> Randomisation:
    """Each image's map by ``trained`` against its map by ``shuffled``, a network of the
    same architecture trained on shuffled labels (see the module docstring). Neither
    model is changed (both are put in eval mode)."""
    _check_run(trained, methods, measures)
    _check_model(shuffled)
    _check("target", target, TARGETS)
    if trained.preset != shuffled.preset or trained.num_classes != shuffled.num_classes:
        raise ValueError("the two networks must have the same architecture and classes: "
                         f"{trained.preset.name} with {trained.num_classes} classes vs "
                         f"{shuffled.preset.name} with {shuffled.num_classes}")
    trained.eval()
    shuffled.eval()
    given = which is not None
    which = _default_which(trained, images, target, which)
    other = (which if given or target == "fc8"
             else _default_which(shuffled, images, target, None))
    seconds = {m: 0.0 for m in methods}
    run = dict(methods=methods, target=target, patch=patch, stride=stride, seconds=seconds)
    a = _explain_all(trained, images, which=which, **run)
    b = _explain_all(shuffled, images, which=other, **run)
    same, shuffled_scores = _compare(a, a, measures), _compare(a, b, measures)
    scores = {m: {s: np.stack([same[m][s], shuffled_scores[m][s]]) for s in measures}
              for m in methods}
    maps = {m: [a[m], b[m]] for m in methods}
    return Randomisation("data", target, [(), SHUFFLED], which, maps, scores, seconds)
