"""The parts world's background: dead leaves (:mod:`zfbook.data.world`).

Discs, ellipses, boxes and triangles dropped one over the other, sizes drawn from a power
law (density ∝ r⁻³ on 2–64 px: the dead-leaves model's scale invariance), colours from a
per-image palette, some leaves shaded, striped or mottled, over a smooth colour field, and
painted out of focus by a per-image amount.
"""
from __future__ import annotations

import numpy as np

from .canvas import SIZE, _FOCUS, Canvas, _cs, _q, _texture, _value_noise, disc, ellipse, natural_colour, polygon, rect

#: the world's clutter: background leaves (fewest, most), loose parts (fewest, most), the
#: chance that leaves fall in front of the object, and how many (fewest, most)
STYLE = {"leaves": (40, 130), "loose": (0, 3), "occluded": 0.25, "occluders": (1, 4)}

def _palette(rng):
    n = int(rng.integers(3, 7))
    chroma = rng.uniform(10, 50)
    return np.stack([natural_colour(rng, chroma) for _ in range(n)])


def _leaf(rng, canvas, palette, cx, cy, r):
    colour = np.clip(palette[rng.integers(len(palette))] + rng.integers(-40, 41, 3), 0, 255)
    shape = rng.choice(4, p=[0.4, 0.25, 0.2, 0.15])
    deg = int(rng.integers(0, 360))
    if shape == 0:
        prim = disc(cx, cy, r)
    elif shape == 1:
        prim = ellipse(cx, cy, r, r * rng.uniform(0.3, 0.8), deg)
    elif shape == 2:
        prim = rect(cx, cy, r, r * rng.uniform(0.25, 1.0), deg, rounding=r * rng.uniform(0, 0.3))
    else:
        a0 = int(rng.integers(0, 360))
        pts = []
        for k in range(3):
            c, s = _cs(a0 + 120 * k + int(rng.integers(-25, 26)))
            pts.append((cx + r * c, cy + r * s))
        prim = polygon(pts)
    if prim is None or prim[1] is None:
        return
    box, alpha = prim
    fill = _texture(rng, box, colour, None) if r >= 4 else colour
    canvas.paint(box, alpha, fill)


def _leaf_radius(rng, lo=2.0, hi=64.0):
    """A radius with density ∝ r⁻³ on [lo, hi] (the dead-leaves model's scale invariance)."""
    u = rng.random()
    return (lo ** -2 - u * (lo ** -2 - hi ** -2)) ** -0.5


def background(rng, n_leaves=None):
    """A dead-leaves background over a smooth colour field, as float RGB (H, W, 3)."""
    palette = _palette(rng)
    field = np.zeros((SIZE, SIZE, 3))
    for ch in range(3):
        coarse = _value_noise(rng, 2, (SIZE, SIZE)) * 0.6 + _value_noise(rng, 6, (SIZE, SIZE)) * 0.4
        field[..., ch] = coarse
    lo, hi = palette.min(0), palette.max(0)
    rgb = lo + (hi - lo) * field
    canvas = Canvas(rgb)
    n = int(rng.integers(*STYLE["leaves"])) if n_leaves is None else n_leaves
    _FOCUS[0] = _q(rng.uniform(1.0, 3.5))   # depth of field: the background is out of focus
    try:
        for _ in range(n):
            r = _leaf_radius(rng)
            cx, cy = rng.uniform(-8, SIZE + 8, 2)
            _leaf(rng, canvas, palette, cx, cy, r)
    finally:
        _FOCUS[0] = 1.0
    return canvas, palette
