"""Sanity checks of the deconvnet: what its pictures do and do not depend on.

Beyond the paper. Zeiler & Fergus read the deconvnet's projections (Section 2.1, Figs. 1,
2, 4, 7) as pictures of what a feature has learned. Three later papers test that reading:

* Adebayo et al., "Sanity Checks for Saliency Maps" (NeurIPS 2018): re-initialise the
  weights layer by layer from the top (*cascading randomisation*) or one layer at a time
  (*independent randomisation*) and measure how much each explanation changes (Section
  3, the model-parameter randomisation test), or train the network on shuffled labels
  (Section 4, the data-randomisation test);
* Nie, Zhang & Patel (ICML 2018): the deconvnet and Guided Backprop largely *reconstruct
  the image*, driven by the switches and ReLUs, not by what the chosen unit learned;
* Mahendran & Vedaldi, "Salient Deconvolutional Networks" (ECCV 2016): with the switches
  fixed, the output depends little on which neuron was chosen.

This module computes those measurements for a zfbook model.

**Methods** (:data:`METHODS`): ``deconvnet`` (:func:`zfbook.deconv.project`, ours),
``gradient`` (plain saliency: Captum ``Saliency`` / ``NeuronGradient``),
``guided_backprop`` (Captum ``GuidedBackprop`` / ``NeuronGuidedBackprop``) and
``occlusion`` (ours: :class:`zfbook.occlusion.IncrementalForward`, the incremental sweep
behind :func:`~zfbook.occlusion.occlusion_maps`; one sweep gives every class's logit and
every conv5 map's total).
Captum is imported when a Captum method is first used (an ``ImportError`` names
``pip install captum`` otherwise); it is a dependency of the package.

**What each map explains** (:func:`explain`), the same quantity for every method:

* ``target="fc8"`` — the **logit** of one class (by default the class the *trained*
  network predicts, kept fixed while the weights are randomised). Gradient and Guided
  Backprop differentiate it (a backward pass seeded with 1). The deconvnet projects it
  from fc8 seeded with **1** rather than with the logit's value: a randomised network's
  logit may be negative, and a negative seed would flip what the deconvnet's
  rectifications keep: :func:`zfbook.deconv.project` with ``seed_with="one"``, all
  images in one batch. Occlusion: per pixel, the mean drop of the logit over the
  squares covering it (:func:`zfbook.occlusion.pixel_average`).
* ``target="conv5"`` — one conv5 feature map (by default the trained network's most
  active one for the image). Deconvnet, gradient and Guided Backprop explain the map's
  **strongest activation** in the network at hand (Fig. 2's choice); occlusion explains
  the map's **total** activation (Fig. 7b, the only conv5 quantity the sweep records).
  Layers above conv5 cannot change these maps.

The deconvnet passes contrast normalisation through (Section 2.1); Captum's methods
differentiate it (a near-uniform rescaling on zfnet-mini, see the deconvnet chapter).

**Randomisation** (:func:`randomize`) always works on a deep copy; the model passed in is
never modified. Each named layer's weight and bias are re-drawn with the model's *own*
init scheme (:func:`zfbook.models._init`: for the mini presets Kaiming-normal weights for
conv1…fc7 and N(0, 0.01²) for fc8; for the paper presets N(0, 0.01²) throughout; biases
0), from a seed derived from ``seed`` and the layer's name, so a layer gets the same
random weights in every step and in both kinds of randomisation, and a second run gives
identical results.

**Similarity** (:func:`similarity`) between the trained network's map and a randomised
one, per image: ``spearman_abs`` (Spearman rank correlation of the absolute maps, summed
over colour channels), ``spearman`` (the same without the absolute value, Adebayo et
al.'s second variant) and ``ssim`` (scikit-image's structural similarity of the absolute
maps, each scaled to [0, 1] by its maximum). A map compared with itself gives exactly 1
on all three (identical maps are recognised before the floating-point computation, which
can round Spearman's 1 to 1 − 2⁻⁵²). :func:`similarities` compares many pairs at once:
:func:`ranks` ranks a whole stack of maps in one sort (average ranks for ties, as
``scipy.stats.rankdata``) and :func:`spearman` correlates the ranks row by row.

**Power** (Adebayo et al. 2018 use one random draw per layer; we repeat it).
:func:`seeded_randomisation` re-draws the random weights with several seeds (any subset
of the steps), making the trained network's maps once: similarities per step, seed and
image; each image's mean over the seeds is one value of the Student-t interval over
images (``interval``, :mod:`zfbook.stats`). :func:`null` sets the level of "nothing in
common": the similarity between the trained network's maps of two *unrelated* images (a
seeded derangement of the images, or all pairs), which is not 0 when maps share a centre
bias; ``Null.paired`` tests a step against it, image by image, and :func:`against_null`
every method at every step (the paired t-test, Holm-corrected over methods × steps), as a
table. :func:`data_randomisation` is
the paper's second test (Section 4): the maps of a network trained on *shuffled labels*
against the trained network's.

**Neuron selectivity** (:func:`selectivity`): for one image, the mean pairwise Spearman
(absolute maps) among the maps of several conv5 feature maps, or of all fc8 classes.
**Reconstruction** (:func:`edge_correlation`): Spearman between a map and the image's
edge strength (Sobel gradient magnitude), against the same with another image's edges.

Only zfbook ``ConvNet`` models (layers named conv1…fc8) are accepted: randomisation
addresses layers by the paper's names.

**Layout**: ``methods`` (:func:`explain`), ``similarity``, ``weights`` (model-parameter
randomisation, one seed or several), ``null``, ``labels`` (data randomisation),
``selectivity``, ``reconstruction``; every name is importable from ``zfbook.sanity``.
"""
from __future__ import annotations

from .labels import SHUFFLED, data_randomisation
from .methods import METHODS, TARGETS, explain, top_classes, top_features
from .null import PAIRINGS, AgainstNull, Null, NullTest, against_null, null, unrelated_pairs
from .reconstruction import edge_correlation, edge_map
from .selectivity import selectivity
from .similarity import (MEASURES, _view,  # _view: zfbook.plot.sanity draws with it
                         ranks, similarities, similarity, spearman)
from .weights import (Randomisation, SeededRandomisation, cascading_steps, independent_steps,
                      randomisation, randomize, seeded_randomisation, step_label)

__all__ = ["METHODS", "TARGETS", "MEASURES", "explain", "randomize", "cascading_steps",
           "independent_steps", "step_label", "similarity", "similarities", "ranks",
           "spearman", "Randomisation", "randomisation",
           "selectivity", "edge_map", "edge_correlation", "top_classes", "top_features",
           "SeededRandomisation", "seeded_randomisation", "PAIRINGS", "Null", "null",
           "against_null", "AgainstNull", "NullTest",
           "unrelated_pairs", "SHUFFLED", "data_randomisation"]
