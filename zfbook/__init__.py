"""zfbook: Zeiler & Fergus, *Visualizing and Understanding Convolutional Networks*, rebuilt.

The modules follow the paper: ``models`` (Fig. 3), ``data`` (Section 3), ``train``,
``deconv`` (Section 2.1), ``topk`` (Fig. 2), ``occlusion`` (Fig. 7), ``plot``, ``widgets``.
"""
from .models import build, names
from .checkpoint import pretrained, load_checkpoint

__all__ = ["build", "names", "pretrained", "load_checkpoint"]
__version__ = "0.1.0"
