"""Correspondence analysis (Section 4.3, Table 1): does masking the same part of aligned
objects change the features in the same way?

For aligned images ``x_i`` (same class, same pose), mask one part — a square of side
``size`` centred on a keypoint, filled with 0, the training mean after mean subtraction —
and take the change of the layer-``l`` feature vector, ``ε_i = x_i − x̃_i``. Then

    Δ_l = 1 / (N (N − 1)) · Σ_{i ≠ j} H(sign ε_i, sign ε_j) / D

where H counts the entries whose signs differ (sign ∈ {−1, 0, +1}, so an entry unchanged
in one image and changed in the other counts) and D is the feature dimension: the paper's
sum over pairs, divided by the number of ordered pairs and by D so that Δ ∈ [0, 1]. Lower
means the masking moved the features more consistently. The ± is the standard deviation
of the per-pair distances over the N (N − 1) / 2 unordered pairs (H is symmetric).

The control masks **random regions** of the same size: as in the paper's Fig. 8 each
image gets its own random square, drawn (seeded) with its centre on the object when an
object mask is given ("random parts of the object") and anywhere the square fits
otherwise. ``draws`` independent draws are made; their pairs are pooled.

A second control (``same_location=True``, ours) asks whether "same part" is only "same
pixels": each image is masked where the part lies in *another* image, image ``i`` at the
keypoint of image ``i + s`` (mod N), for every shift s = 1 … N − 1, pairs pooled. It holds
fixed the images, the square's size and fill, and the geometry of the masks: every shift
masks the same coordinates as the part row, and each pair (i, j) is masked at the pair of
coordinates the part row masks in (i + s, j + s), so the pairs' locations are the part
row's. Only what lies under the square changes. A part Δ below this control's is more than
the same pixels; with every keypoint on one pixel (perfectly aligned images) the control
*is* the part row and the two cannot be told apart. ``same_location_covers`` gives the
share of its squares that still cover the image's own keypoint.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .models import activations

__all__ = ["PAPER_TABLE1", "PARTS", "mask_square", "sign_distances", "delta",
           "CorrespondenceTable", "correspondence", "correspondence_on"]

#: rows of Table 1, in the paper's order
PARTS = ("right_eye", "left_eye", "nose")

#: Table 1 of the paper: mean ± std of the normalised sign-change distance, 5 dog images
PAPER_TABLE1 = {
    "right_eye": {"conv5": (0.067, 0.007), "fc7": (0.069, 0.015)},
    "left_eye": {"conv5": (0.069, 0.007), "fc7": (0.068, 0.013)},
    "nose": {"conv5": (0.079, 0.017), "fc7": (0.069, 0.011)},
    "random": {"conv5": (0.107, 0.017), "fc7": (0.073, 0.014)},
}


def mask_square(images: torch.Tensor, centres, size: int, fill: float = 0.0) -> torch.Tensor:
    """Copies of preprocessed ``images`` (N, C, H, W) with a ``size``×``size`` square set to
    ``fill`` around each centre (N, 2) as (y, x); the square is clipped at the border.

    The square covers rows ``round(y) − size // 2`` … ``+ size − 1`` (likewise columns)."""
    if size < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size}")
    centres = torch.as_tensor(centres, dtype=torch.float64).reshape(-1, 2)
    if len(centres) != len(images):
        raise ValueError(f"{len(images)} images but {len(centres)} centres")
    if torch.isnan(centres).any():
        raise ValueError("a centre is NaN: that image's class has no such keypoint")
    out = images.clone()
    h, w = images.shape[-2:]
    for i, (y, x) in enumerate(centres.tolist()):
        t, l = int(round(y)) - size // 2, int(round(x)) - size // 2
        out[i, :, max(t, 0):max(min(t + size, h), 0), max(l, 0):max(min(l + size, w), 0)] = fill
    return out


def sign_distances(eps: torch.Tensor) -> torch.Tensor:
    """Normalised Hamming distances ``H(sign ε_i, sign ε_j) / D`` of all unordered pairs
    i < j of the rows of ``eps`` (N, D) — a vector of N (N − 1) / 2 values in [0, 1]."""
    s = torch.sign(eps.reshape(len(eps), -1))
    n = len(s)
    if n < 2:
        raise ValueError(f"need at least 2 images to compare, got {n}")
    i, j = torch.triu_indices(n, n, offset=1)
    return (s[i] != s[j]).double().mean(dim=1)


def delta(eps: torch.Tensor) -> tuple[float, float]:
    """Δ of Table 1 for the feature changes ``eps`` (N, D): (mean, std over pairs)."""
    d = sign_distances(eps)
    return float(d.mean()), float(d.std(unbiased=False))


@dataclass
class CorrespondenceTable:
    """Our Table 1. ``rows[part][layer] = (mean, std)``; ``pairs[part][layer]`` holds the
    per-pair distances; ``centres[part]`` the square centres (draws, N, 2) used.

    With ``same_location=True`` (the same-location control, see the module docstring),
    ``same_location[part][layer] = (mean, std)``, ``same_location_pairs`` and
    ``same_location_centres[part]`` (N − 1 shifts, N, 2) likewise, and
    ``same_location_covers[part]``, the share of those squares that cover the image's own
    keypoint; all None without it."""
    rows: dict
    pairs: dict
    centres: dict
    size: int
    layers: tuple
    n_images: int
    paper: dict = field(default_factory=lambda: PAPER_TABLE1)
    same_location: dict | None = None
    same_location_pairs: dict | None = None
    same_location_centres: dict | None = None
    same_location_covers: dict | None = None

    def format(self) -> str:
        """Our table beside the paper's, as aligned text."""
        rows = [(part.replace("_", " "), part, row) for part, row in self.rows.items()]
        rows += [(f"{part.replace('_', ' ')}, same place", None, row)
                 for part, row in (self.same_location or {}).items()]
        width = max([11] + [len(name) for name, _, _ in rows])
        head = f"{'occlusion':{width}s}" + "".join(
            f" | {'ours ' + layer:>15s} | {'paper ' + layer:>15s}" for layer in self.layers)
        lines = [head, "-" * len(head)]
        for name, part, row in rows:
            cells = []
            for layer in self.layers:
                m, s = row[layer]
                p = self.paper.get(part, {}).get(layer)
                paper = f"{p[0]:.3f} ± {p[1]:.3f}" if p else "—"
                cells.append(f" | {f'{m:.3f} ± {s:.3f}':>15s} | {paper:>15s}")
            lines.append(f"{name:{width}s}" + "".join(cells))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def _random_centres(masks, n, h, w, size, generator):
    """One random centre per image: on the object (mask) if given, the square inside."""
    lo, hi_y, hi_x = size // 2, h - (size - size // 2), w - (size - size // 2)
    out = torch.empty(n, 2, dtype=torch.float64)
    for i in range(n):
        allowed = torch.zeros(h, w, dtype=torch.bool)
        allowed[lo:hi_y + 1, lo:hi_x + 1] = True
        if masks is not None:
            on_object = allowed & masks[i].bool()
            allowed = on_object if on_object.any() else allowed
        ys, xs = torch.nonzero(allowed, as_tuple=True)
        k = int(torch.randint(len(ys), (1,), generator=generator))
        out[i] = torch.tensor([float(ys[k]), float(xs[k])])
    return out


@torch.no_grad()
def correspondence(model, images: torch.Tensor, keypoints, keypoint_names, size: int = 12,
                   layers=("conv5", "fc7"), parts=PARTS, masks=None, draws: int = 5,
                   seed: int = 0, fill: float = 0.0,
                   same_location: bool = False) -> CorrespondenceTable:
    """Table 1 for preprocessed aligned ``images`` (N, C, H, W).

    ``keypoints`` (N, K, 2) are (y, x) in the same pixel coordinates, named by
    ``keypoint_names``; each of ``parts`` is masked by a ``size``-pixel square centred on
    its keypoint. The "random" row masks ``draws`` independent random squares per image
    (on the object ``masks`` (N, H, W) if given). ``same_location`` adds the
    same-location control of every part. See the module docstring for Δ and the control.
    """
    keypoints = torch.as_tensor(keypoints, dtype=torch.float64)
    names = list(keypoint_names)
    for part in parts:
        if part not in names:
            raise ValueError(f"unknown part {part!r}; parts are: {', '.join(names)}")
    n, _, h, w = images.shape
    if n < 2:
        raise ValueError(f"need at least 2 aligned images, got {n}")
    if not 1 <= size <= min(h, w):
        raise ValueError(f"size must be between 1 and {min(h, w)} pixels, got {size}")
    if draws < 1:
        raise ValueError(f"draws must be ≥ 1, got {draws}")
    layers = tuple(layers)
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        base = activations(model, images.to(device), layers)

        def eps(centres):
            masked = activations(model, mask_square(images, centres, size, fill).to(device), layers)
            return {layer: (base[layer] - masked[layer]).cpu().reshape(n, -1) for layer in layers}

        centres = {part: keypoints[:, names.index(part)][None] for part in parts}
        g = torch.Generator().manual_seed(seed)
        centres["random"] = torch.stack([_random_centres(masks, n, h, w, size, g)
                                         for _ in range(draws)])
        def measure(centres):
            """part → layer → pooled distances, and → (mean, std), over the draws."""
            pairs = {}
            for part, cs in centres.items():
                per_draw = [eps(c) for c in cs]
                pairs[part] = {layer: torch.cat([sign_distances(e[layer]) for e in per_draw])
                               for layer in layers}
            return pairs, {part: {layer: (float(d.mean()), float(d.std(unbiased=False)))
                                  for layer, d in by_layer.items()}
                           for part, by_layer in pairs.items()}

        pairs, rows = measure(centres)
        table = CorrespondenceTable(rows, pairs, centres, int(size), layers, n)
        if same_location:
            elsewhere = {part: torch.stack([c[0].roll(-s, 0) for s in range(1, n)])
                         for part, c in centres.items() if part in parts}
            table.same_location_pairs, table.same_location = measure(elsewhere)
            table.same_location_centres = elsewhere
            table.same_location_covers = {part: _covers(c, centres[part][0], size)
                                          for part, c in elsewhere.items()}
    finally:
        model.train(was_training)
    return table


def _covers(squares: torch.Tensor, points: torch.Tensor, size: int) -> float:
    """Share of the squares (…, N, 2) centred as in :func:`mask_square` that contain their
    image's point (N, 2), the pixel it rounds to."""
    top = squares.round() - size // 2
    inside = (points.round() >= top) & (points.round() < top + size)
    return float(inside.all(-1).double().mean())


def correspondence_on(model, dataset, size: int = 12, preprocess=None,
                      **kwargs) -> CorrespondenceTable:
    """:func:`correspondence` on an :class:`~zfbook.data.EmbeddedDataset` of aligned images
    (e.g. ``zfbook.data.aligned(5)``): centre-crops them with ``preprocess`` (default
    ``model.preprocess``) and moves keypoints and object masks into the crop."""
    preprocess = preprocess or getattr(model, "preprocess", None)
    if preprocess is None:
        raise ValueError("pass preprocess=Preprocess(mean, crop): the model carries none")
    o = (preprocess.size - preprocess.crop) // 2
    c = preprocess.crop
    x = preprocess.center(dataset.images)
    kps = torch.as_tensor(dataset.keypoints, dtype=torch.float64) - o
    masks = dataset.masks[:, o:o + c, o:o + c]
    kwargs.setdefault("masks", masks)
    return correspondence(model, x, kps, dataset.keypoint_names, size, **kwargs)
