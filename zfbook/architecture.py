"""Architecture selection (Section 4.1, Fig. 6): the three symptoms the paper saw in
Krizhevsky et al.'s layers 1 and 2, as numbers that can come out either way.

The paper looked at AlexNet's first two layers with the deconvnet and saw (Fig. 6 b, d):
**dead filters** in layer 1; layer-1 filters that are "a mix of extremely high and low
frequency information, with little coverage of the mid frequencies"; and **aliasing
artifacts** in layer 2, which it put down to conv1's stride of 4. ZFNet's 7×7 stride-2
conv1 removed all three (Fig. 6 c, e). This module measures each on any pair of networks:

* :func:`dead_filters` — a map is *dead* when its RMS rectified response on the given
  images is at most ``fraction`` (default 5%) of the median map's RMS in that layer
  (``by="activation"``); or, with ``by="weight"``, when its filter's weight norm is at most
  that fraction of the median norm. Returns the indices. Killing a filter (zero weights,
  negative bias) makes it dead by either definition; a layer whose maps all respond alike
  has none.
* :func:`radial_spectrum` / :func:`frequency_bands` — the radially averaged power spectrum
  of a filter bank in cycles per input pixel (each filter zero-padded to ``size`` × ``size``,
  its power summed over colours and normalised to 1, so every filter counts equally; the
  DC term is kept: a colour blob is low-frequency information). The bank's spectrum is the
  mean over filters. Bands: low r < 1/6, mid 1/6 ≤ r < 1/3, high r ≥ 1/3 cycles/pixel
  (r up to √2/2 in the corners). The **mid-frequency gap** is
  ``1 − P_mid / √(P_low·P_high)`` with ``P_band`` the bank's mean power density in the band:
  how far the mid band falls below the geometric mean of the two outer bands. 0 for a flat
  (white) or log-linear spectrum; > 0 when the middle is under-covered relative to both
  ends (the paper's description: a dip, or a steep fall onto a high-frequency floor);
  < 0 for a bump.
* :func:`shift_responses` / :func:`shift_variation` — aliasing seen from the input: the
  image content, inside a smooth window, moves by 0, 1, …, ``shifts`` − 1 pixels (a full
  period of layer 2's total stride of 8 in both mini networks), and for every image and
  map the layer's rectified output minus its response to a blank input is summed over the
  map at each shift. An alias-free layer gives the same sum at every shift; aliasing makes
  it oscillate. The number is Σ std / Σ |mean| over images and maps (an energy-weighted
  coefficient of variation).
* :func:`grid_energy` — aliasing seen in the projections (Fig. 6 d, e): the power of
  deconvnet projections at the frequencies of conv1's sampling grid (multiples of
  1/stride, DC excluded), divided by the mean power of their eight neighbouring frequency
  bins: 1 means no periodic grid, larger means a grid pattern.

Accepts zfbook models (layers ``conv1``…``conv5``) and uint8 or preprocessed images as
documented per function. Refuses fc layers for the filter measures (no spatial filters) and
images whose side does not fit the requested shifts. Everything runs in a few seconds on a
CPU for the mini networks (``benchmarks/bench_architecture.py``).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .models import ConvNet, activations, layer_module

__all__ = ["filter_energy", "dead_filters", "radial_spectrum", "frequency_bands", "BANDS",
           "shift_responses", "shift_variation", "grid_energy", "conv", "total_stride", "diagnose"]

#: frequency bands in cycles per input pixel: low, mid, high
BANDS = ((0.0, 1 / 6), (1 / 6, 1 / 3), (1 / 3, math.inf))


def conv(model: ConvNet, layer: str) -> nn.Conv2d:
    """The Conv2d module of ``layer`` (``conv1``…``conv5``)."""
    if not layer.startswith("conv"):
        raise ValueError(f"layer {layer!r} has no spatial filters; use one of conv1…conv5")
    layer_module(model, layer)  # validates the name
    return getattr(model.features, layer)


def total_stride(model: ConvNet, layer: str) -> int:
    """Input pixels per step of ``layer``'s output map (product of conv and pool strides)."""
    s = 1
    for name, m in model.features.named_children():
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d)):
            st = m.stride if isinstance(m.stride, int) else m.stride[0]
            s *= st
        if name == layer.replace("conv", "relu"):
            return s
    raise ValueError(f"unknown layer {layer!r}; use one of conv1…conv5")


@torch.no_grad()
def filter_energy(model: ConvNet, layers, images: torch.Tensor, *, batch_size: int = 64):
    """RMS of each map's rectified response over ``images`` (preprocessed, N × C × H × W) and
    all positions: one value per map of the layer (a tensor), or a dict layer → tensor for
    a list of layers (one pass over the images serves them all)."""
    single = isinstance(layers, str)
    layers = [layers] if single else list(layers)
    for layer in layers:
        conv(model, layer)
    was = model.training
    model.eval()
    total, count = {}, {}
    try:
        for i in range(0, len(images), batch_size):
            acts = activations(model, images[i:i + batch_size], layers)
            for layer in layers:
                # squares summed in float32 within a batch (relative error ~1e-7 here), the
                # batches in float64: a float64 copy of conv1's maps cost a third of the pass
                a = acts[layer]
                total[layer] = total.get(layer, 0) + a.square().sum((0, 2, 3)).double()
                count[layer] = count.get(layer, 0) + a.shape[0] * a.shape[2] * a.shape[3]
    finally:
        model.train(was)
    if not total:
        raise ValueError("images is empty")
    out = {layer: (total[layer] / count[layer]).sqrt().float() for layer in layers}
    return out[layers[0]] if single else out


def _dead(value: torch.Tensor, fraction: float) -> torch.Tensor:
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    return torch.nonzero(value <= fraction * value.median()).flatten()


def dead_filters(model: ConvNet, layer: str, images: torch.Tensor | None = None, *,
                 fraction: float = 0.05, by: str = "activation") -> torch.Tensor:
    """Indices of the dead maps of ``layer`` (see the module docstring).

    ``by="activation"`` (needs ``images``, preprocessed): RMS response ≤ ``fraction`` × the
    layer's median RMS response. ``by="weight"``: filter weight norm ≤ ``fraction`` × the
    median norm.
    """
    if by == "activation":
        if images is None:
            raise ValueError("dead_filters(by='activation') needs images")
        value = filter_energy(model, layer, images)
    elif by == "weight":
        value = conv(model, layer).weight.detach().float().flatten(1).norm(dim=1)
    else:
        raise ValueError(f"unknown by={by!r}; use 'activation' or 'weight'")
    return _dead(value, fraction)


def _weight(model_or_weight) -> torch.Tensor:
    if isinstance(model_or_weight, torch.Tensor):
        w = model_or_weight
    else:
        w = conv(model_or_weight, "conv1").weight
    w = w.detach().float().cpu()
    if w.dim() != 4:
        raise ValueError(f"a filter bank is (filters, colours, k, k), got shape {tuple(w.shape)}")
    return w


def _frequencies(size: int) -> torch.Tensor:
    f = torch.fft.fftfreq(size)
    return (f[:, None] ** 2 + f[None, :] ** 2).sqrt()


def _power(w: torch.Tensor, size: int) -> torch.Tensor:
    if w.shape[-1] > size:
        raise ValueError(f"size {size} is smaller than the filters ({w.shape[-1]})")
    p = torch.fft.fft2(w.double(), s=(size, size)).abs().pow(2).sum(1)  # (F, size, size)
    return p / p.sum((1, 2), keepdim=True).clamp_min(1e-300)


def radial_spectrum(model_or_weight, *, size: int = 32, bins: int = 12):
    """The radially averaged power spectrum of a filter bank (a model's conv1, or a
    (F, C, k, k) weight): ``(freq, power)`` with ``freq`` the bin centres in cycles per
    pixel (0 … 0.5) and ``power`` (F, bins) each filter's mean normalised power density per
    bin. Frequencies beyond 0.5 (the corners) are left out of the curve, not of the bands."""
    w = _weight(model_or_weight)
    p = _power(w, size)
    r = _frequencies(size)
    edges = torch.linspace(0, 0.5, bins + 1, dtype=torch.float64)
    which = torch.bucketize(r, edges, right=True) - 1
    out = torch.zeros(w.shape[0], bins, dtype=torch.float64)
    for b in range(bins):
        m = which == b
        if b == bins - 1:
            m = m | (r == 0.5)
        out[:, b] = p[:, m].mean(1) if m.any() else float("nan")
    return ((edges[:-1] + edges[1:]) / 2).float(), out.float()


def frequency_bands(model_or_weight, *, size: int = 32) -> dict:
    """Band measures of a layer-1 filter bank (see :data:`BANDS`): ``share`` (low, mid,
    high: the bank's fraction of power per band), ``density`` (mean normalised power per
    frequency sample per band), ``gap`` (the mid-frequency gap), and ``centroid`` (each
    filter's power-weighted mean frequency, cycles/pixel)."""
    w = _weight(model_or_weight)
    p = _power(w, size)
    r = _frequencies(size).double()
    bank = p.mean(0)
    share, density = [], []
    for lo, hi in BANDS:
        m = (r >= lo) & (r < hi)
        share.append(bank[m].sum().item())
        density.append(bank[m].mean().item())
    gap = 1.0 - density[1] / math.sqrt(density[0] * density[2])
    centroid = (p * r).sum((1, 2)).float()
    return {"share": tuple(share), "density": tuple(density), "gap": gap, "centroid": centroid}


def _taper(n: int, lo: int, hi: int, ramp: int) -> torch.Tensor:
    """1 on [lo + ramp, hi - ramp), a Hann ramp down to 0 at lo and hi, 0 outside."""
    t = torch.zeros(n)
    i = torch.arange(n, dtype=torch.float32)
    up = 0.5 - 0.5 * torch.cos(math.pi * (i - lo) / ramp)
    down = 0.5 - 0.5 * torch.cos(math.pi * (hi - i) / ramp)
    t = torch.where((i >= lo) & (i < hi), torch.minimum(torch.ones(n), torch.minimum(up, down)), t)
    return t


@torch.no_grad()
def shift_responses(model: ConvNet, layers, images: torch.Tensor, preprocess=None, *,
                    shifts: int = 8, axis: int = -1, batch_size: int = 64) -> dict:
    """The summed response of every map of ``layers`` as the image content moves by
    0 … ``shifts`` − 1 pixels along ``axis``: layer → (shifts, N, maps).

    ``images`` are uint8 at the resized side (``preprocess.size``; default the model's
    ``.preprocess``). Each is mean-subtracted, scaled, and multiplied by a smooth window
    (Hann ramps of 8 pixels) that moves with the content and keeps it inside every crop,
    so nothing enters or leaves at the border: between shifts only the content's phase
    against the network's sampling grid changes. The response of an all-zero input (the
    biases) is subtracted before summing over positions.
    """
    prep = preprocess or getattr(model, "preprocess", None)
    if prep is None:
        raise ValueError("shift_responses needs a Preprocess (model.preprocess or preprocess=)")
    single = isinstance(layers, str)
    layers = [layers] if single else list(layers)
    for layer in layers:
        layer_module(model, layer)
    margin = prep.size - prep.crop
    if shifts < 2 or shifts - 1 > margin:
        raise ValueError(f"shifts must be between 2 and {margin + 1} (the crop margin + 1)")
    if axis not in (-1, -2):
        raise ValueError("axis must be -1 (horizontal) or -2 (vertical)")
    start = (margin - (shifts - 1)) // 2
    # the window: inside the region every crop covers, with a few pixels to spare
    lo, hi = start + shifts + 3, start + prep.crop - 4
    win = _taper(prep.size, lo, hi, 8)
    win = win[:, None] * win[None, :]
    was = model.training
    model.eval()
    out = {layer: [] for layer in layers}
    try:
        blank = activations(model, torch.zeros(1, 3, prep.crop, prep.crop), layers)
        # the windowed images once; each shift crops them
        windowed = [prep._centered(images[i:i + batch_size]) * win
                    for i in range(0, len(images), batch_size)]
        for d in range(shifts):
            off = [start + shifts - 1, start + shifts - 1]
            off[axis] = start + shifts - 1 - d  # the crop moves left: the content moves right
            parts = {layer: [] for layer in layers}
            for xw in windowed:
                x = xw[..., off[0]:off[0] + prep.crop, off[1]:off[1] + prep.crop].contiguous()
                acts = activations(model, x, layers)
                for layer in layers:
                    parts[layer].append((acts[layer] - blank[layer]).double().sum((2, 3)))
            for layer in layers:
                out[layer].append(torch.cat(parts[layer]))
    finally:
        model.train(was)
    res = {layer: torch.stack(v) for layer, v in out.items()}
    return res[layers[0]] if single else res


def shift_variation(model: ConvNet, layers, images: torch.Tensor, preprocess=None, *,
                    shifts: int = 8, axis: int = -1):
    """Aliasing as a number per layer: Σ over images and maps of the standard deviation of
    the summed response across shifts, over Σ of its mean (:func:`shift_responses`). 0 for
    a shift-invariant layer. A float for one layer name, else a dict."""
    single = isinstance(layers, str)
    res = shift_responses(model, [layers] if single else layers, images, preprocess,
                          shifts=shifts, axis=axis)
    num = {k: (v.std(0, unbiased=False).sum() / v.mean(0).abs().sum().clamp_min(1e-300)).item()
           for k, v in res.items()}
    return next(iter(num.values())) if single else num


def grid_energy(projections: torch.Tensor, stride: int) -> float:
    """Peak-to-neighbourhood power of ``projections`` (…, C, H, W; H and W multiples of
    ``stride``) at the frequencies of a ``stride``-pixel sampling grid: the mean power at
    (i/stride, j/stride) cycles/pixel, (i, j) ≠ (0, 0), over the mean power of the eight
    neighbouring frequency bins of each. 1: no grid pattern; larger: a grid."""
    x = projections.detach().double().cpu()
    h, w = x.shape[-2:]
    if stride < 2 or h % stride or w % stride:
        raise ValueError(f"stride must be ≥ 2 and divide the image side ({h}×{w}), got {stride}")
    x = x - x.mean((-2, -1), keepdim=True)
    p = torch.fft.fft2(x).abs().pow(2)
    p = p.reshape(-1, h, w).sum(0)
    peak, around = [], []
    for i in range(stride):
        for j in range(stride):
            if i == 0 and j == 0:
                continue
            y, xx = i * h // stride, j * w // stride
            peak.append(p[y, xx])
            ring = [p[(y + dy) % h, (xx + dx) % w] for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
            around.append(torch.stack(ring).mean())
    return (torch.stack(peak).mean() / torch.stack(around).mean().clamp_min(1e-300)).item()


def diagnose(model: ConvNet, images: torch.Tensor, *, shift_images: int = 64, fraction: float = 0.05,
             layers=("conv1", "conv2")) -> dict:
    """All of Fig. 6's measures for one trained network, from uint8 test ``images`` at the
    resized side (the model's ``.preprocess`` prepares them): dead maps of ``layers`` by
    response over all ``images`` and by weight norm, the layer-1 bands and mid-frequency
    gap, and the shift variation of ``layers`` over the first ``shift_images`` images."""
    x = model.preprocess.center(images)
    out = {"maps": {l: conv(model, l).out_channels for l in layers}}
    energy = filter_energy(model, list(layers), x)
    out["dead"] = {l: _dead(energy[l], fraction).tolist() for l in layers}
    out["dead_by_weight"] = {l: dead_filters(model, l, by="weight", fraction=fraction).tolist()
                             for l in layers}
    bands = frequency_bands(model)
    out["bands"] = {"share": bands["share"], "gap": bands["gap"]}
    out["shift_variation"] = shift_variation(model, list(layers), images[:shift_images])
    return out
