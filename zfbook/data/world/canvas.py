"""The parts world's canvas: quantised geometry, anti-aliased primitives as signed-distance
functions, colours and fills (:mod:`zfbook.data.world`).

Byte-identical on any machine: every geometric number is rounded to a multiple of 1/64 px
(angles to whole degrees, their sines and cosines to 2⁻²⁰) before it touches a pixel, and
per-pixel arithmetic is only ``+ − × ÷ √``, ``min``, ``max``, ``floor``. Coverage is
clip(½ − distance / focus, 0, 1): edges one pixel wide in focus, wider out of focus.
"""
from __future__ import annotations

import math

import numpy as np

SIZE = 128
_Q = 64.0          # geometry is rounded to multiples of 1/_Q px
_QT = float(2 ** 20)


def _q(x: float) -> float:
    return round(float(x) * _Q) / _Q


def _cs(deg: int) -> tuple[float, float]:
    r = math.radians(int(deg))
    return round(math.cos(r) * _QT) / _QT, round(math.sin(r) * _QT) / _QT


# ----------------------------------------------------------------------------- canvas
_YS, _XS = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64) + 0.5   # pixel centres


class Canvas:
    """An RGB float image in [0, 255] that primitives are painted on (back to front), with
    an optional coverage layer that records what a group of primitives (the object) covers."""

    def __init__(self, rgb: np.ndarray):
        self.rgb = rgb
        self.cover = None   # float (H, W) coverage being recorded, or None

    def paint(self, box, alpha, colour):
        """Blend ``colour`` ((3,) or (h, w, 3)) into the window ``box`` with coverage ``alpha``."""
        if alpha is None:
            return
        t, l, b, r = box
        a = alpha[..., None]
        win = self.rgb[t:b, l:r]
        win *= 1.0 - a
        win += a * colour
        if self.cover is not None:
            c = self.cover[t:b, l:r]
            c *= 1.0 - alpha
            c += alpha
        return


#: edge width in pixels: 1 is in focus; the background is painted out of focus (wider)
_FOCUS = [1.0]


def _window(cx, cy, ext):
    """Pixel window (top, left, bottom, right) around (cx, cy) of half-size ``ext``, or None."""
    ext = ext + _FOCUS[0] / 2
    t, l = max(int(math.floor(cy - ext - 1)), 0), max(int(math.floor(cx - ext - 1)), 0)
    b, r = min(int(math.ceil(cy + ext + 2)), SIZE), min(int(math.ceil(cx + ext + 2)), SIZE)
    if t >= b or l >= r:
        return None
    return t, l, b, r


def _coverage(d):
    """Anti-aliased coverage from a signed distance in pixels (negative inside)."""
    a = np.clip(0.5 - d / _FOCUS[0], 0.0, 1.0)
    return a if a.any() else None


def _local(box, cx, cy, c, s):
    """Pixel centres of ``box`` in a frame centred at (cx, cy), rotated by the angle whose
    cosine and sine are (c, s)."""
    t, l, b, r = box
    dx, dy = _XS[t:b, l:r] - cx, _YS[t:b, l:r] - cy
    return dx * c + dy * s, -dx * s + dy * c


# ----------------------------------------------------------------------------- primitives
# Each takes image-space geometry (pixels, whole degrees) and returns (box, alpha) or None.
def disc(cx, cy, r):
    cx, cy, r = _q(cx), _q(cy), _q(max(r, 0.3))
    box = _window(cx, cy, r)
    if box is None:
        return None
    t, l, b, rr = box
    dx, dy = _XS[t:b, l:rr] - cx, _YS[t:b, l:rr] - cy
    return box, _coverage(np.sqrt(dx * dx + dy * dy) - r)


def ring(cx, cy, r, width):
    cx, cy, r, w = _q(cx), _q(cy), _q(max(r, 0.5)), _q(max(width, 0.5))
    box = _window(cx, cy, r + w / 2)
    if box is None:
        return None
    t, l, b, rr = box
    dx, dy = _XS[t:b, l:rr] - cx, _YS[t:b, l:rr] - cy
    return box, _coverage(np.abs(np.sqrt(dx * dx + dy * dy) - r) - w / 2)


def ellipse(cx, cy, a, b, deg=0):
    """An ellipse of half-axes ``a`` (along the angle) and ``b``; the distance is the
    usual first-order approximation, exact on the axes."""
    cx, cy, a, b = _q(cx), _q(cy), _q(max(a, 0.3)), _q(max(b, 0.3))
    box = _window(cx, cy, max(a, b))
    if box is None:
        return None
    c, s = _cs(deg)
    u, v = _local(box, cx, cy, c, s)
    k = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    return box, _coverage((k - 1.0) * min(a, b))


def rect(cx, cy, hw, hh, deg=0, rounding=0.0):
    """A box of half-width ``hw`` (along the angle) and half-height ``hh``, corners rounded."""
    cx, cy, hw, hh = _q(cx), _q(cy), _q(max(hw, 0.3)), _q(max(hh, 0.3))
    rounding = _q(min(rounding, hw, hh))
    box = _window(cx, cy, math.hypot(hw, hh))
    if box is None:
        return None
    c, s = _cs(deg)
    u, v = _local(box, cx, cy, c, s)
    qx, qy = np.abs(u) - (hw - rounding), np.abs(v) - (hh - rounding)
    ox, oy = np.maximum(qx, 0.0), np.maximum(qy, 0.0)
    d = np.sqrt(ox * ox + oy * oy) + np.minimum(np.maximum(qx, qy), 0.0) - rounding
    return box, _coverage(d)


def capsule(x1, y1, x2, y2, width):
    """A stroke of ``width`` from (x1, y1) to (x2, y2) with round ends (legs, arms, stems)."""
    x1, y1, x2, y2, h = _q(x1), _q(y1), _q(x2), _q(y2), _q(max(width, 0.5)) / 2
    pad = h + _FOCUS[0] / 2
    t = max(int(math.floor(min(y1, y2) - pad - 1)), 0)
    l = max(int(math.floor(min(x1, x2) - pad - 1)), 0)
    b = min(int(math.ceil(max(y1, y2) + pad + 2)), SIZE)
    r = min(int(math.ceil(max(x1, x2) + pad + 2)), SIZE)
    if t >= b or l >= r:
        return None
    px, py = _XS[t:b, l:r] - x1, _YS[t:b, l:r] - y1
    ex, ey = x2 - x1, y2 - y1
    ee = ex * ex + ey * ey
    k = np.clip((px * ex + py * ey) / ee, 0.0, 1.0) if ee > 0 else 0.0
    dx, dy = px - k * ex, py - k * ey
    return (t, l, b, r), _coverage(np.sqrt(dx * dx + dy * dy) - h)


def polygon(points):
    """A convex polygon (points in either winding order): the largest signed distance to its
    edges' lines (exact inside and along edges, which is what anti-aliasing needs)."""
    pts = [(_q(x), _q(y)) for x, y in points]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    pad = _FOCUS[0] / 2
    t = max(int(math.floor(min(ys) - pad - 1)), 0)
    l = max(int(math.floor(min(xs) - pad - 1)), 0)
    b = min(int(math.ceil(max(ys) + pad + 2)), SIZE)
    r = min(int(math.ceil(max(xs) + pad + 2)), SIZE)
    if t >= b or l >= r:
        return None
    X, Y = _XS[t:b, l:r], _YS[t:b, l:r]
    n = len(pts)
    area = sum(pts[i][0] * pts[(i + 1) % n][1] - pts[(i + 1) % n][0] * pts[i][1] for i in range(n))
    sign = 1.0 if area > 0 else -1.0
    d = None
    for i in range(n):
        (xa, ya), (xb, yb) = pts[i], pts[(i + 1) % n]
        ex, ey = xb - xa, yb - ya
        norm = math.sqrt(ex * ex + ey * ey)
        if norm == 0:
            continue
        nx, ny = _q(ey / norm * sign * 4096) / 4096, _q(-ex / norm * sign * 4096) / 4096
        di = (X - xa) * nx + (Y - ya) * ny
        d = di if d is None else np.maximum(d, di)
    return (t, l, b, r), _coverage(d)


# ----------------------------------------------------------------------------- textures
def _value_noise(rng, cells, shape):
    """Smooth noise: a (cells+1)² grid of uniform values, bilinearly interpolated to ``shape``."""
    h, w = shape
    g = rng.random((cells + 1, cells + 1))
    ys = (np.arange(h) + 0.5) * (cells / h)
    xs = (np.arange(w) + 0.5) * (cells / w)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    y1, x1 = np.minimum(y0 + 1, cells), np.minimum(x0 + 1, cells)
    a, b = g[y0][:, x0], g[y0][:, x1]
    c, d = g[y1][:, x0], g[y1][:, x1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def _texture(rng, box, colour, deg=None):
    """A leaf's or a body's fill over ``box``: flat, shaded, striped or mottled."""
    kind = rng.choice(4, p=[0.45, 0.2, 0.2, 0.15])
    if kind == 0:
        return colour
    t, l, b, r = box
    h, w = b - t, r - l
    if kind == 3:
        n = _value_noise(rng, int(rng.integers(2, 6)), (h, w))
        amp = rng.uniform(30, 90)
        return np.clip(colour + (n[..., None] - 0.5) * amp * _unit(rng), 0, 255)
    c, s = _cs(int(rng.integers(0, 360)) if deg is None else deg)
    X, Y = _XS[t:b, l:r], _YS[t:b, l:r]
    p = X * c + Y * s
    if kind == 1:   # shading: a linear ramp across the box
        span = max(h, w)
        k = _q(rng.uniform(0.3, 0.9))
        ramp = (p - p.min()) / max(span, 1.0)
        return np.clip(colour * ((1 - k / 2) + k * ramp)[..., None], 0, 255)
    period = _q(rng.uniform(3.0, 12.0))
    phase = (p / period) - np.floor(p / period)          # in [0, 1)
    tri = np.abs(phase - 0.5) * 2                          # triangle wave
    stripe = np.clip((tri - 0.5) * 4 + 0.5, 0, 1)[..., None]
    other = _other_colour(rng, colour, 90)
    return colour * stripe + other * (1 - stripe)


def _unit(rng):
    v = rng.normal(size=3)
    return np.round(v / (np.sqrt((v * v).sum()) + 1e-9) * 4096) / 4096


def _other_colour(rng, colour, dist):
    for _ in range(20):
        c = natural_colour(rng, 60.0)
        if np.abs(c - colour).sum() >= dist:
            return c
    return 255.0 - colour


def natural_colour(rng, chroma=40.0):
    """A colour as photographs have them: a luminance, plus a smaller zero-mean chroma."""
    lum = rng.uniform(15, 240)
    c = rng.normal(0.0, chroma, 3)
    c = c - (c[0] + c[1] + c[2]) / 3
    return np.clip(np.round(lum + c), 0, 255)
