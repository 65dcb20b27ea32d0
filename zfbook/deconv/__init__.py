"""The deconvnet (Section 2.1, Fig. 1): project one activation back to pixel space.

A forward pass records the max-pool **switches**. One activation of one feature map is
kept, every other activation of its layer is set to zero, and the signal goes back down
to the pixels, layer by layer:

* **unpool** — each value goes back to its switch; where overlapping 3×3/2 pools pick
  the same input position, the values are *summed* (:func:`unpool`);
* **rectify** — ReLU;
* **filter** — the layer's own filters, transposed, without biases
  (``torch.nn.grad.conv2d_input``, which reproduces the exact input size for stride > 1);
* contrast normalisation is passed through unchanged, dropout is the identity, fc layers
  are filtered by their transposed weight matrix.

Without contrast normalisation this is a *modified backward pass*: the gradient of the
activation with respect to the input when ReLU's backward is replaced by ReLU of the
incoming gradient (what Captum calls ``Deconvolution``), with the backward pass seeded with
the activation's value. For the non-negative activations of rectified layers that is the
value times the gradient (:func:`gradient` computes it with autograd).
``project(..., seed_with="one")`` seeds the down pass with 1 instead, as gradient methods
are seeded: the same picture divided by the activation where it is positive, and the one
to use for a logit, which may be negative (the sanity chapter's deconvnet of a class).

Any model works whose path from the input to ``layer`` is a chain of ``nn.Conv2d``,
``nn.ReLU``, ``nn.MaxPool2d``, ``nn.LocalResponseNorm``, ``nn.Dropout``, ``nn.Flatten``/
``torch.flatten``, ``nn.Linear`` (plus ``nn.Identity``, and ``nn.AdaptiveAvgPool2d`` where
it is an identity at the given input size): the zfbook models (layers ``conv1``…``fc8``)
and torchvision's AlexNet and VGG (layers named as in ``named_modules()``). The chain is
read with ``torch.fx``; anything else on the path is refused, naming it.

Speed: each image's forward pass is shared by all its projections, the down passes are
batched, and each down pass is cropped to the receptive field of its activation
(:func:`receptive_field`), which gives the same numbers for a fraction of the work.
"""
from __future__ import annotations

from .backward import gradient, pass_norm
from .field import crop, receptive_field
from .links import Link, RefusedError, chain
from .projection import SEEDS, Step, project, steps, switches, unpool

__all__ = ["project", "SEEDS", "gradient", "pass_norm", "receptive_field", "crop", "switches", "unpool", "steps", "Step",
           "chain", "Link", "RefusedError"]
