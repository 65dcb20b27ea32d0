"""Data: the embedded offline dataset, real datasets through torchvision, and the paper's
preprocessing (Section 3)."""
from .preprocess import Preprocess, mean_image, resize_center
from .embedded import EmbeddedDataset, embedded, aligned, CLASSES, TRANSFER_CLASSES, KEYPOINTS
from .real import load, DATASETS

__all__ = ["Preprocess", "mean_image", "resize_center", "EmbeddedDataset", "embedded",
           "aligned", "CLASSES", "TRANSFER_CLASSES", "KEYPOINTS", "load", "DATASETS"]
