"""Fixtures shared by the test modules."""
import pytest
import torch

from zfbook.models import build


@pytest.fixture(scope="module")
def mini():
    """A random-weight zfnet-mini (12 classes), seeded, in eval mode; one per test module."""
    torch.manual_seed(0)
    return build("zfnet-mini", num_classes=12).eval()
