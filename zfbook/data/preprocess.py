"""The paper's preprocessing (Section 3), scaled to a preset's resolution.

The paper resizes the shortest side to 256, centre-crops 256×256, subtracts the per-pixel
mean image of the training set, trains on random 224×224 crops with horizontal flips and
tests on 10 crops (4 corners + centre, each also flipped). Here the resized side is
``mean.shape[-1]`` (256 for the full models, 128 for the mini presets) and the crop is
``crop`` (224 / 112). Pixels stay in the paper's units: 0…255 minus the mean, so
inputs span roughly [-128, 128] as Section 3 describes; the mini presets then multiply by
``scale`` = 1/64 (see :mod:`zfbook.models`).
"""
from __future__ import annotations

import numpy as np
import torch
from torchvision.transforms import v2 as T

__all__ = ["Preprocess", "mean_image", "resize_center"]


def resize_center(size: int):
    """Resize the shortest side to ``size`` and take the centre square (a torchvision transform)."""
    return T.Compose([T.Resize(size, antialias=True), T.CenterCrop(size)])


def mean_image(images: torch.Tensor, batch: int = 1024) -> torch.Tensor:
    """Per-pixel mean (C, H, W), float32, of a uint8 (N, C, H, W) tensor of training images."""
    total = torch.zeros(images.shape[1:], dtype=torch.float64)
    for i in range(0, len(images), batch):
        total += images[i:i + batch].double().sum(0)
    return (total / len(images)).float()


class Preprocess:
    """Mean subtraction and cropping, batched on tensors.

    ``mean`` is the (C, R, R) training-set mean at the resized resolution ``R``; ``crop`` the
    network's input side. All methods take uint8 or float images (N, C, R, R) or (C, R, R),
    on any device. ``scale`` multiplies the mean-subtracted pixels (1 for the paper's models).
    """

    def __init__(self, mean: torch.Tensor, crop: int, scale: float = 1.0):
        if mean.dim() != 3 or mean.shape[-1] != mean.shape[-2]:
            raise ValueError(f"mean must be a square (C, R, R) image, got shape {tuple(mean.shape)}")
        if not 0 < crop <= mean.shape[-1]:
            raise ValueError(f"crop {crop} must be between 1 and the resized side {mean.shape[-1]}")
        self.mean = mean.float()
        self.scale = float(scale)
        self.crop = int(crop)
        self.size = int(mean.shape[-1])

    def __repr__(self) -> str:
        return f"Preprocess(size={self.size}, crop={self.crop}, scale={self.scale:g})"

    # -- helpers
    def _centered(self, images: torch.Tensor, window: tuple | None = None) -> torch.Tensor:
        """``(images − mean) · scale`` in float32; with ``window = (top, left, side)`` only that
        square is computed (cropped before the arithmetic, the same numbers)."""
        x = images.unsqueeze(0) if images.dim() == 3 else images
        if x.shape[-2:] != self.mean.shape[-2:]:
            raise ValueError(f"images must be {self.size}×{self.size} (the resized side), "
                             f"got {tuple(x.shape[-2:])}; resize them with resize_center({self.size})")
        mean = self.mean.to(x.device)
        if window is not None:
            t, l, c = window
            x, mean = x[..., t:t + c, l:l + c], mean[..., t:t + c, l:l + c]
        x = x.to(torch.float32, copy=True).sub_(mean)   # a copy: the caller's tensor is left alone
        return x.mul_(self.scale) if self.scale != 1.0 else x

    def _offsets(self):
        m = self.size - self.crop
        return {"top-left": (0, 0), "top-right": (0, m), "bottom-left": (m, 0),
                "bottom-right": (m, m), "centre": (m // 2, m // 2)}

    # -- the three views of Section 3
    def center(self, images: torch.Tensor) -> torch.Tensor:
        """Mean-subtracted centre crop: the single-crop test view. (N, C, crop, crop)."""
        o = (self.size - self.crop) // 2
        return self._centered(images, (o, o, self.crop)).contiguous()

    def random(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Training view: a random ``crop``×``crop`` sub-crop per image, flipped with p = 0.5."""
        x = self._centered(images)
        n, m = x.shape[0], self.size - self.crop
        gen_device = generator.device if generator is not None else "cpu"
        tops = torch.randint(0, m + 1, (n,), generator=generator, device=gen_device).to(x.device)
        lefts = torch.randint(0, m + 1, (n,), generator=generator, device=gen_device).to(x.device)
        flips = torch.rand(n, generator=generator, device=gen_device).to(x.device) < 0.5
        ar = torch.arange(self.crop, device=x.device)
        rows = (tops[:, None] + ar)                                  # (N, crop)
        cols = lefts[:, None] + torch.where(flips[:, None], self.crop - 1 - ar, ar)
        idx_n = torch.arange(n, device=x.device)[:, None, None]
        # gather (N, C, crop, crop) with advanced indexing on the spatial dims
        out = x.permute(0, 2, 3, 1)[idx_n, rows[:, :, None], cols[:, None, :]]
        return out.permute(0, 3, 1, 2).contiguous()

    def ten_crop(self, images: torch.Tensor) -> torch.Tensor:
        """The 10 test crops: 4 corners + centre, each with and without a flip. (N, 10, C, crop, crop)."""
        x = self._centered(images)
        crops = [x[..., t:t + self.crop, l:l + self.crop] for t, l in self._offsets().values()]
        crops += [c.flip(-1) for c in crops]
        return torch.stack(crops, 1).contiguous()

    def display(self, x: torch.Tensor) -> np.ndarray:
        """Undo the mean subtraction of a preprocessed crop for viewing: HWC float in [0, 1].

        A centre crop gets the matching centre of the mean image back.
        """
        x = x.detach().float().cpu()
        if x.dim() == 4:
            if x.shape[0] != 1:
                raise ValueError("display takes one image (C, H, W)")
            x = x[0]
        h, w = x.shape[-2:]
        ot, ol = (self.size - h) // 2, (self.size - w) // 2
        img = x / self.scale + self.mean[:, ot:ot + h, ol:ol + w]
        return (img / 255.0).clamp(0, 1).permute(1, 2, 0).numpy()
