"""Occlusion sensitivity (Section 4.2, Fig. 7): slide a grey square over the image and watch
one layer-5 feature map and the classifier.

:func:`occlusion_maps` returns, from one sweep, the three maps of Fig. 7: (b) the total
activation of one feature map of ``layer``, (d) the probability of the target class and
(e) the most probable class, for every placement of the square.

**Incremental inference.** A square changes only a window of each layer's output: an
output of a conv or pool with kernel *k*, stride *s* and padding *p* depends on *k* inputs,
and ReLU, dropout (eval) and the contrast normalisation (across maps, never across space)
act pixel by pixel. :class:`IncrementalForward` caches the activations of the unoccluded
image, works out from that geometry which window of each layer a placement can change,
recomputes only that window (from the cached input around it, pasted together with the
previous layer's recomputed window) and goes dense once a window covers the whole map or
at the dense layers. The maps are exact: equal, to float rounding, to running the network
on every occluded image (``method="batched"`` does that, batched). The same idea,
"Krypton", is Nakandala, Kumar & Papakonstantinou, SIGMOD 2019.

It works for any chain model made of ``Conv2d``, ``MaxPool2d``, ``ReLU``,
``LocalResponseNorm``, ``Dropout``, ``Flatten`` and ``Linear`` (a zfbook ``ConvNet`` or an
``nn.Sequential``); other modules are run densely on the full maps.
"""
from __future__ import annotations

from . import incremental
from .incremental import IncrementalForward
from .square import occlude, placements
from .statistics import (attribution, drop_map, in_mask_share, in_mask_shares, mask_share_baseline,
                         pixel_average)
from .sweep import METHODS, OcclusionMaps, occlusion_maps

_chain = incremental._chain  # zfbook.sources imports it from here

__all__ = [
    "OcclusionMaps", "occlusion_maps", "placements", "occlude", "IncrementalForward",
    "pixel_average", "attribution", "drop_map", "in_mask_share", "mask_share_baseline",
    "in_mask_shares", "METHODS",
]
