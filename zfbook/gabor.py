"""How much a first layer looks like the paper's: the share of conv1 filters that a 2-D
Gabor fits (Fig. 6 c; Krizhevsky et al. 2012, Fig. 3).

The first layer of a convnet trained on photographs learns oriented edges, gratings and
colour blobs; a noisy or unsettled layer does not. A 2-D Gabor — a Gaussian envelope times
a cosine grating,

    g(x, y) = a · exp(−x'²/2σ₁² − y'²/2σ₂²) · cos(2π f x' + φ) + c,

with (x', y') the pixel offsets from a centre (x₀, y₀) rotated by θ — describes all three:
an edge or a grating has f > 0, a blob f = 0. :func:`fit` fits it to one kernel by least
squares (``scipy.optimize.least_squares`` with the analytic Jacobian; starts at a blob, at
the kernel's spectral peak and at three other orientations; bounds that keep σ between half
a pixel and the kernel's side and f below the Nyquist limit of 0.5 cycles/pixel) and
returns the fit's R² = 1 − SS_res / SS_tot.

A colour filter (3, k, k) is fitted twice, the best of the two counting
(:func:`filter_r2`): its **colour-summed kernel** (the sum over RGB: what it sees of
luminance), and its **main colour-opponent kernel** (the filter minus its colour-summed
part, projected on its first singular colour vector: a red–green or blue–yellow Gabor).
:func:`gabor_share` is the share of a layer's filters with R² ≥ ``threshold`` (0.85).

Controls, so that the number can come out either way (:func:`gabor_bank`): random Gabors
with 15% added noise score high (positive control); an untrained layer — the network's own
initialisation — scores low (the null). A k × k kernel has k² pixels and the model 9
parameters, so even noise is fitted in part: compare with the null, not with zero.

Accepts any model whose ``conv1`` (or a weight tensor (n, 3, k, k)) is given; about 0.1 s
a filter on one CPU core.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["gabor", "fit", "GaborFit", "filter_fit", "filter_r2", "layer_fits", "layer_r2", "gabor_share",
           "gabor_bank", "THRESHOLD"]

#: the R² above which a filter counts as a Gabor
THRESHOLD = 0.85


def _terms(params, size):
    x0, y0, s1, s2, th, f, ph, a, c = params
    y, x = _GRIDS.get(size) or _GRIDS.setdefault(size, tuple(np.mgrid[0:size, 0:size].astype(np.float64)))
    dx, dy = x - x0, y - y0
    ct, st = math.cos(th), math.sin(th)
    xr, yr = dx * ct + dy * st, -dx * st + dy * ct
    env = np.exp(-(xr * xr) / (2 * s1 * s1) - (yr * yr) / (2 * s2 * s2))
    arg = 2 * math.pi * f * xr + ph
    return xr, yr, env, np.cos(arg), np.sin(arg), ct, st


_GRIDS: dict = {}


def gabor(params, size: int) -> np.ndarray:
    """The Gabor of ``params`` = (x0, y0, sigma1, sigma2, theta, freq, phase, amp, offset) on
    a ``size`` × ``size`` grid of pixel centres (0 … size − 1)."""
    xr, yr, env, cos, sin, ct, st = _terms(params, size)
    return params[7] * env * cos + params[8]


def _jacobian(params, size):
    """∂gabor/∂params, analytically: (size², 9)."""
    x0, y0, s1, s2, th, f, ph, a, c = params
    xr, yr, env, cos, sin, ct, st = _terms(params, size)
    aec, aes = a * env * cos, a * env * sin
    d_xr = -aec * xr / (s1 * s1) - aes * 2 * math.pi * f
    d_yr = -aec * yr / (s2 * s2)
    cols = [-d_xr * ct + d_yr * st,              # x0
            -d_xr * st - d_yr * ct,              # y0
            aec * xr * xr / s1 ** 3,             # sigma1
            aec * yr * yr / s2 ** 3,             # sigma2
            d_xr * yr - d_yr * xr,               # theta
            -aes * 2 * math.pi * xr,             # freq
            -aes,                                # phase
            env * cos,                           # amp
            np.ones_like(xr)]                    # offset
    return np.stack([col.ravel() for col in cols], 1)


def fit(kernel) -> tuple[float, np.ndarray]:
    """Fit a Gabor to a square 2-D ``kernel``; returns ``(r2, params)`` of the best of several
    starts (a blob; a grating at the kernel's spectral peak in three phases; gratings of
    0.2 cycles/pixel at three other orientations × 2 phases), all centred on its strongest
    pixel; at most 100 evaluations each."""
    from scipy.optimize import least_squares
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise ValueError(f"fit takes a square 2-D kernel, got shape {tuple(k.shape)}")
    n = k.shape[0]
    target = k.ravel()
    ss_tot = float(((target - target.mean()) ** 2).sum())
    if ss_tot == 0.0:
        return 0.0, np.zeros(9)
    scale = float(np.abs(k).max())
    cy, cx = np.unravel_index(np.abs(k - k.mean()).argmax(), k.shape)
    lo = [-0.5, -0.5, 0.5, 0.5, -2 * math.pi, 0.0, -2 * math.pi, -10 * scale, -10 * scale]
    hi = [n - 0.5, n - 0.5, float(n), float(n), 2 * math.pi, 0.5, 2 * math.pi, 10 * scale, 10 * scale]

    def residual(p):
        return gabor(p, n).ravel() - target

    # starts strictly inside the bounds (relative margin: a kernel of tiny values has tiny bounds)
    span = np.array(hi) - np.array(lo)
    lo_in, hi_in = np.array(lo) + 1e-9 * span, np.array(hi) - 1e-9 * span

    # starts: a blob, and gratings at the kernel's spectral peak and at 3 other orientations,
    # each in two phases, all centred on the kernel's strongest pixel
    spec = np.abs(np.fft.fft2(k - k.mean()))
    fy, fx = np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :]
    iy, ix = np.unravel_index(spec.argmax(), spec.shape)
    peak_f = float(min(math.hypot(fx[0, ix], fy[iy, 0]), 0.45))
    peak_th = math.atan2(fy[iy, 0], fx[0, ix])
    starts = [(0.0, 0.0, 0.0)]
    starts += [(peak_th, peak_f, ph) for ph in (0.0, math.pi / 2, math.pi)]
    starts += [(th, 0.2, ph) for th in (peak_th + math.pi / 4, peak_th + math.pi / 2, peak_th - math.pi / 4)
               for ph in (0.0, math.pi / 2)]
    best = (np.inf, None)
    for th, f, ph in starts:
        p0 = [float(cx), float(cy), n / 4, n / 4, th, f, ph, scale, float(target.mean())]
        p0 = np.clip(p0, lo_in, hi_in)
        r = least_squares(residual, p0, jac=lambda p: _jacobian(p, n), bounds=(lo, hi), max_nfev=100)
        cost = float((r.fun ** 2).sum())
        if cost < best[0]:
            best = (cost, r.x)
        if best[0] <= 1e-3 * ss_tot:   # R² ≥ 0.999: no start will do better that matters
            break
    return 1.0 - best[0] / ss_tot, best[1]


def _kernels(w: np.ndarray) -> list[np.ndarray]:
    """A filter's colour-summed kernel and main colour-opponent kernel."""
    summed = w.sum(0)
    if w.shape[0] == 1:
        return [summed]
    opp = w - w.mean(0, keepdims=True)
    u, s, vt = np.linalg.svd(opp.reshape(w.shape[0], -1), full_matrices=False)
    return [summed, (s[0] * vt[0]).reshape(w.shape[1:])]


@dataclass(frozen=True)
class GaborFit:
    """The best Gabor fit to one filter: its ``r2``, which of the filter's kernels it fits
    (``"luminance"``: the colour-summed kernel; ``"colour"``: the main colour-opponent one),
    that ``kernel`` (k, k) and the Gabor's nine ``params`` (:func:`gabor`)."""
    r2: float
    which: str
    kernel: np.ndarray
    params: np.ndarray

    def fitted(self) -> np.ndarray:
        """The fitted Gabor, (k, k), on the kernel's scale."""
        return gabor(self.params, self.kernel.shape[0])


def filter_fit(filt) -> GaborFit:
    """The best Gabor fit to one filter (c, k, k): the better of its colour-summed and main
    colour-opponent kernels."""
    w = filt.detach().cpu().double().numpy() if torch.is_tensor(filt) else np.asarray(filt, np.float64)
    if w.ndim == 2:
        w = w[None]
    if w.ndim != 3:
        raise ValueError(f"a filter is (channels, k, k), got shape {tuple(w.shape)}")
    fits = []
    for which, k in zip(("luminance", "colour"), _kernels(w)):
        r2, params = fit(k)
        fits.append(GaborFit(r2, which, k, params))
    return max(fits, key=lambda f: f.r2)


def filter_r2(filt) -> float:
    """R² of the best Gabor fit to one filter (c, k, k) (:func:`filter_fit`)."""
    return filter_fit(filt).r2


def layer_fits(model_or_weight) -> list[GaborFit]:
    """The best Gabor fit of every filter of ``conv1`` (a model) or of a weight tensor
    (n, c, k, k)."""
    from .architecture import _weight   # the filter bank of conv1, or the weight given
    return [filter_fit(f) for f in _weight(model_or_weight)]


def layer_r2(model_or_weight) -> np.ndarray:
    """R² of the best Gabor fit for every filter of ``conv1`` (a model) or of a weight
    tensor (n, c, k, k)."""
    return np.array([f.r2 for f in layer_fits(model_or_weight)])


def gabor_share(model_or_weight, threshold: float = THRESHOLD) -> float:
    """Share of the filters whose best Gabor fit has R² ≥ ``threshold``."""
    return float((layer_r2(model_or_weight) >= threshold).mean())


def gabor_bank(n: int = 32, size: int = 7, channels: int = 3, noise: float = 0.15, seed: int = 0) -> torch.Tensor:
    """The positive control: ``n`` random colour Gabors (n, channels, size, size) — random
    centre, scale, orientation, frequency (a quarter of them blobs, f = 0) and phase, each
    with a random colour direction — plus Gaussian noise of ``noise`` × the filter's RMS."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, channels, size, size))
    for i in range(n):
        c = (size - 1) / 2
        p = [c + rng.uniform(-1, 1), c + rng.uniform(-1, 1), rng.uniform(0.8, size / 3),
             rng.uniform(0.8, size / 3), rng.uniform(0, math.pi), 0.0 if i % 4 == 0 else rng.uniform(0.08, 0.4),
             rng.uniform(0, 2 * math.pi), 1.0, 0.0]
        g = gabor(p, size)
        colour = rng.normal(size=channels)
        f = colour[:, None, None] * g[None]
        rms = float(np.sqrt((f ** 2).mean()))
        out[i] = f + rng.normal(0, noise * rms, f.shape)
    return torch.from_numpy(out).float()
