"""Image statistics, to set a synthetic world beside photographs (the data chapter).

A first layer learns what its images' statistics call for, so a world meant to teach a
network what photographs teach it should share their statistics. Three classic measures,
taken the same way on any uint8 images (N, 3, H, W) or (N, H, W):

* :func:`amplitude_spectrum` — the radially averaged Fourier amplitude of the luminance
  (Hann-windowed, mean removed), in cycles per pixel; photographs fall as ~1/f^α with α
  near 1 (Field 1987; van der Schaaf & van Hateren 1996). :func:`spectral_slope` fits α on
  log-log axes between 1/64 and 1/4 cycles per pixel.
* :func:`orientation_histogram` — the distribution of local edge orientations (Sobel
  gradients, each pixel weighted by its gradient magnitude, angles folded to [0°, 180°)):
  photographs have every orientation, with more energy at horizontal and vertical.
  :func:`orientation_entropy` is its entropy over the bins' maximum (1 = every orientation
  alike).
* :func:`local_contrast` — the RMS contrast of 8 × 8 patches (std / mean luminance): how
  contrast varies across an image; photographs have a broad, skewed distribution.

:func:`photographs` returns the colour and grey photographs that scikit-image ships
(offline), resized as the embedded images are (shortest side to ``size``, centre crop), so
that both sides are measured at the same size.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["luminance", "amplitude_spectrum", "spectral_slope", "orientation_histogram",
           "orientation_entropy", "local_contrast", "photographs", "PHOTOGRAPHS"]

#: the photographs of ``skimage.data`` used as the reference (bundled: no download)
PHOTOGRAPHS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "brick", "grass", "gravel")


def luminance(images) -> np.ndarray:
    """float64 (N, H, W) luminance (Rec. 601 weights) of uint8 (N, 3, H, W) or (N, H, W) images."""
    x = images.numpy() if torch.is_tensor(images) else np.asarray(images)
    x = x.astype(np.float64)
    if x.ndim == 4:
        if x.shape[1] != 3:
            raise ValueError(f"colour images are (N, 3, H, W), got shape {x.shape}")
        x = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    if x.ndim != 3:
        raise ValueError(f"images are (N, 3, H, W) or (N, H, W), got shape {x.shape}")
    return x


def amplitude_spectrum(images, bins: int = 24):
    """``(freqs, amplitude)``: the mean radially averaged amplitude of the images' luminance
    at ``bins`` log-spaced frequencies from 1/H to 1/2 cycles per pixel."""
    lum = luminance(images)
    n, h, w = lum.shape
    win = np.outer(np.hanning(h), np.hanning(w))
    lum = (lum - lum.mean(axis=(1, 2), keepdims=True)) * win
    amp = np.abs(np.fft.fft2(lum)).mean(0)
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
    r = np.sqrt(fx * fx + fy * fy)
    edges = np.geomspace(1.0 / min(h, w), 0.5, bins + 1)
    idx = np.digitize(r.ravel(), edges) - 1
    ok = (idx >= 0) & (idx < bins)
    sums = np.bincount(idx[ok], amp.ravel()[ok], bins)
    counts = np.bincount(idx[ok], minlength=bins)
    centres = np.sqrt(edges[:-1] * edges[1:])
    keep = counts > 0
    return centres[keep], sums[keep] / counts[keep]


def spectral_slope(images, lo: float = 1 / 64, hi: float = 1 / 4) -> float:
    """α of the fit amplitude ∝ f^−α between ``lo`` and ``hi`` cycles per pixel."""
    f, a = amplitude_spectrum(images)
    sel = (f >= lo) & (f <= hi)
    slope = np.polyfit(np.log(f[sel]), np.log(a[sel]), 1)[0]
    return float(-slope)


def _sobel(lum):
    from scipy import ndimage
    gx = ndimage.sobel(lum, axis=2)
    gy = ndimage.sobel(lum, axis=1)
    return gx, gy


def orientation_histogram(images, bins: int = 12) -> np.ndarray:
    """Share of gradient energy in ``bins`` orientation bins over [0°, 180°) (edges, not
    gradient directions: an edge at θ has its gradient at θ + 90°; bin 0 = horizontal
    edges). Sums to 1."""
    gx, gy = _sobel(luminance(images))
    mag = np.hypot(gx, gy)[:, 1:-1, 1:-1]
    ang = (np.degrees(np.arctan2(gy, gx))[:, 1:-1, 1:-1] + 90.0) % 180.0
    hist = np.histogram(ang, bins=bins, range=(0, 180), weights=mag)[0]
    return hist / hist.sum()


def orientation_entropy(images, bins: int = 12) -> float:
    """Entropy of :func:`orientation_histogram` over log(bins): 1 when every orientation
    carries the same energy, 0 when one does all."""
    p = orientation_histogram(images, bins)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum() / np.log(bins))


def local_contrast(images, patch: int = 8) -> np.ndarray:
    """RMS contrast (std / mean luminance) of every non-overlapping ``patch`` × ``patch``
    patch of every image, flattened."""
    lum = luminance(images)
    n, h, w = lum.shape
    h, w = h - h % patch, w - w % patch
    p = lum[:, :h, :w].reshape(n, h // patch, patch, w // patch, patch)
    mean = p.mean(axis=(2, 4))
    std = p.std(axis=(2, 4))
    return (std / np.maximum(mean, 1.0)).ravel()


def photographs(size: int = 128) -> torch.Tensor:
    """The :data:`PHOTOGRAPHS` of ``skimage.data`` as uint8 (N, 3, size, size): shortest side
    resized to ``size``, centre square; grey ones repeated over 3 channels."""
    import skimage.data
    from .preprocess import resize_center
    out = []
    for name in PHOTOGRAPHS:
        im = np.asarray(getattr(skimage.data, name)())
        if im.ndim == 2:
            im = np.repeat(im[..., None], 3, axis=2)
        t = torch.from_numpy(np.ascontiguousarray(im[..., :3])).permute(2, 0, 1)
        out.append(resize_center(size)(t))
    return torch.stack(out)
