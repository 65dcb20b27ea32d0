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

:func:`per_image` takes the three one image at a time (α, the entropy, the median local
contrast), for a test that compares two sets of images image by image.

And where the edges are: :func:`edge_share` is the share of an image's gradient magnitude
that falls in a region (the background, say: the pixels outside the object's mask, grown by
:func:`grow`). The orientation and contrast measures take the same ``where=`` region, so
the background and the object can be measured apart. Gradients are taken image by image
(:func:`gradient_magnitude`).

:func:`photographs` returns the colour and grey photographs that scikit-image ships
(offline), resized as the embedded images are (shortest side to ``size``, centre crop), so
that both sides are measured at the same size.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["luminance", "amplitude_spectrum", "spectral_slope", "orientation_histogram",
           "orientation_entropy", "local_contrast", "gradient_magnitude", "edge_share", "grow",
           "per_image", "MEASURES", "photographs", "PHOTOGRAPHS"]

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
    """The Sobel derivatives of each (H, W) plane of ``lum`` (N, H, W), edges reflected.
    (``scipy.ndimage.sobel`` on the stack would also smooth across the images' axis and mix
    each image's gradient with its neighbours'.)"""
    from scipy import ndimage
    d, s = [-1.0, 0.0, 1.0], [1.0, 2.0, 1.0]
    gx = ndimage.correlate1d(ndimage.correlate1d(lum, d, axis=2), s, axis=1)
    gy = ndimage.correlate1d(ndimage.correlate1d(lum, d, axis=1), s, axis=2)
    return gx, gy


def _region(where, shape) -> np.ndarray | None:
    if where is None:
        return None
    w = where.numpy() if torch.is_tensor(where) else np.asarray(where)
    if w.shape != shape:
        raise ValueError(f"where must be a boolean (N, H, W) region of the images' shape "
                         f"{shape}, got shape {w.shape}")
    return w.astype(bool)


def gradient_magnitude(images) -> np.ndarray:
    """float64 (N, H, W): the Sobel gradient magnitude of the luminance, 0 on the one-pixel
    border (where the Sobel kernel would reach past the image)."""
    gx, gy = _sobel(luminance(images))
    mag = np.zeros_like(gx)
    mag[:, 1:-1, 1:-1] = np.hypot(gx, gy)[:, 1:-1, 1:-1]
    return mag


def orientation_histogram(images, bins: int = 12, where=None) -> np.ndarray:
    """Share of gradient energy in ``bins`` orientation bins over [0°, 180°) (edges, not
    gradient directions: an edge at θ has its gradient at θ + 90°; bin 0 = horizontal
    edges). Sums to 1. ``where``: a boolean (N, H, W) region; only its pixels count."""
    lum = luminance(images)
    region = _region(where, lum.shape)
    gx, gy = _sobel(lum)
    mag = np.hypot(gx, gy)[:, 1:-1, 1:-1]
    ang = (np.degrees(np.arctan2(gy, gx))[:, 1:-1, 1:-1] + 90.0) % 180.0
    if region is not None:
        mag = np.where(region[:, 1:-1, 1:-1], mag, 0.0)
    hist = np.histogram(ang, bins=bins, range=(0, 180), weights=mag)[0]
    return hist / hist.sum()


def orientation_entropy(images, bins: int = 12, where=None) -> float:
    """Entropy of :func:`orientation_histogram` over log(bins): 1 when every orientation
    carries the same energy, 0 when one does all."""
    p = orientation_histogram(images, bins, where)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum() / np.log(bins))


def local_contrast(images, patch: int = 8, where=None) -> np.ndarray:
    """RMS contrast (std / mean luminance) of every non-overlapping ``patch`` × ``patch``
    patch of every image, flattened. ``where``: a boolean (N, H, W) region; only the
    patches wholly inside it."""
    lum = luminance(images)
    region = _region(where, lum.shape)
    n, h, w = lum.shape
    h, w = h - h % patch, w - w % patch
    p = lum[:, :h, :w].reshape(n, h // patch, patch, w // patch, patch)
    mean = p.mean(axis=(2, 4))
    std = p.std(axis=(2, 4))
    contrast = std / np.maximum(mean, 1.0)
    if region is None:
        return contrast.ravel()
    inside = region[:, :h, :w].reshape(n, h // patch, patch, w // patch, patch).all(axis=(2, 4))
    return contrast[inside]


def edge_share(images, where) -> np.ndarray:
    """float64 (N,): the share of each image's gradient magnitude
    (:func:`gradient_magnitude`) that lies in the boolean (N, H, W) region ``where``
    (``nan`` for an image without edges)."""
    mag = gradient_magnitude(images)
    region = _region(where, mag.shape)
    total = mag.sum(axis=(1, 2))
    inside = np.where(region, mag, 0.0).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return inside / total


def grow(masks, pixels: int = 2) -> np.ndarray:
    """bool (N, H, W): each mask grown by ``pixels`` in every direction (a dilation by a
    square of side 2 · pixels + 1), so that an object's outline, which the Sobel gradient
    sees from both sides, counts as the object's."""
    from scipy import ndimage
    m = masks.numpy() if torch.is_tensor(masks) else np.asarray(masks)
    if m.ndim != 3:
        raise ValueError(f"masks are boolean (N, H, W), got shape {m.shape}")
    if not isinstance(pixels, int) or pixels < 0:
        raise ValueError(f"pixels is a whole number ≥ 0, got {pixels!r}")
    if pixels == 0:
        return m.astype(bool)
    square = np.ones((1, 2 * pixels + 1, 2 * pixels + 1), dtype=bool)
    return ndimage.binary_dilation(m.astype(bool), structure=square)


#: the measures of :func:`per_image`, with the names a table or an axis shows
MEASURES = {"spectral_slope": "spectral slope α", "orientation_entropy": "orientation entropy",
            "median_local_contrast": "median local contrast"}


def per_image(images) -> dict:
    """Each of :data:`MEASURES` for each image on its own, float64 (N,) arrays:
    :func:`spectral_slope`, :func:`orientation_entropy` and the median of
    :func:`local_contrast`, with their default settings."""
    lum = luminance(images)
    one = [x[None] for x in lum]
    return {"spectral_slope": np.array([spectral_slope(x) for x in one]),
            "orientation_entropy": np.array([orientation_entropy(x) for x in one]),
            "median_local_contrast": np.array([float(np.median(local_contrast(x))) for x in one])}


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
