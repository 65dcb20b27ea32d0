"""Matplotlib figures of the paper, one module per chapter.

Every function returns a ``Figure`` (or an array) and never calls ``plt.show()``. The
module of a chapter's figures is named after the chapter's notebook:

=========================  ================================================================
module                     figures
=========================  ================================================================
``plot.images``            shared: a projection or an image as a picture, mosaics
``plot.building_zfnet``    where a first conv layer looks (Fig. 3)
``plot.data``              dataset images with masks, boxes and keypoints; image statistics
``plot.training``          layer-1 filters (Fig. 6), renormalisation, learning curves
``plot.deconvnet``         the deconvnet (Fig. 1), its down pass, unpooling
``plot.features``          top-k projections beside their patches (Fig. 2), one activation
``plot.evolution``         features across training (Fig. 4)
``plot.architecture``      ZFNet beside AlexNet (Fig. 6 b–e, Table 2's first rows)
``plot.ablation``          Table 3
``plot.occlusion``         Fig. 7 and the maps the occlusion widget reuses
``plot.fig7_maps``         the figures of ``python -m zfbook occlude``
``plot.invariance``        Fig. 5
``plot.correspondence``    Table 1 and Fig. 8
``plot.transfer``          Tables 4, 5, 7 and Fig. 9
``plot.sanity``            the sanity checks
=========================  ================================================================

The functions the chapters use most are importable from ``zfbook.plot`` itself
(``plot.fig2``, ``plot.image_grid``, ...); the chapter modules ablation, architecture,
evolution, sanity and transfer are used as ``from zfbook.plot import transfer``.
"""
from .building_zfnet import conv_sampling
from .correspondence import fig8, table1_figure
from .data import image_grid, image_statistics, per_image_measures
from .deconvnet import deconvnet_diagram, steps_figure, unpooling_figure
from .features import feature_grid, fig2, fig2_maps, projection_view
from .images import image_rgb, mosaic, projection_rgb
from .invariance import fig5
from .occlusion import class_colours, class_map, fig7, placement_map, square_outline
from .training import filter_norms, layer1_filters, learning_curves

__all__ = ["projection_rgb", "image_rgb", "mosaic", "feature_grid", "fig2", "fig2_maps",
           "layer1_filters", "deconvnet_diagram", "steps_figure", "unpooling_figure",
           "projection_view", "image_grid", "image_statistics", "per_image_measures",
           "conv_sampling",
           "class_colours", "placement_map", "square_outline", "class_map", "fig7", "fig5",
           "fig8", "table1_figure", "filter_norms", "learning_curves"]
