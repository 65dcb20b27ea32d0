"""The parts world: objects made of shared parts, on dead-leaves backgrounds (version 3 of
the embedded dataset).

Why: a network learns the first layer that its images' statistics call for. Photographs
have a power-law amplitude spectrum and edges of every orientation, scale and contrast
everywhere; on them, the first layer of AlexNet or ZFNet learns oriented edges and colour
blobs (Fig. 6). Higher layers learn parts that recur across classes (eyes, wheels, legs,
windows, petals: Fig. 2). This renderer builds a world with both, in the spirit of the
synthetic worlds of Baradad et al. (2021, dead leaves), Kataoka et al. (2020, classes by
formula) and Baradad et al. (2022, procedural programs):

* **Background: dead leaves.** Discs, ellipses, boxes and triangles dropped one over the
  other, with sizes drawn from a power law (density ∝ r⁻³, 1.5–64 px), colours from a
  per-image palette, some leaves shaded or striped, over a smooth multi-scale colour field.
* **Objects: parts that recur.** Each class is a small program that places shared parts
  (:func:`eye`, :func:`wheel`, :func:`window`, :func:`leg`, :func:`petal`, ears, beaks …)
  with random counts, spacings and colours; poses vary in position, scale (radius 18–56 px,
  log-uniform: 3×), rotation (full for radially symmetric classes, ±30° otherwise), mirror
  and lighting.
* **Clutter.** Loose parts of every kind lie on the background (an eye without a face, a
  wheel without a car), and leaves fall in front of the object, so that no single part
  names a class.

Every image is drawn from its own generator, ``numpy.random.default_rng([seed, family,
split, index, 3])``. Byte-identical on any machine: every geometric number is rounded to a
multiple of 1/64 px (angles to whole degrees, their sines and cosines to 2⁻²⁰) before it
touches a pixel, and per-pixel arithmetic is only ``+ − × ÷ √``, ``min``, ``max``,
``floor``: operations IEEE 754 rounds the same everywhere. Shapes are signed-distance
functions, so edges are anti-aliased (coverage = clip(½ − distance, 0, 1)) without
supersampling.

Each image carries its label, the mask of the object's visible pixels, and, for the face
classes (``face``, ``cat``, ``dog``, ``owl``, ``snowman``), the keypoints left eye, right
eye, nose ("left" meaning the image's left), for the correspondence test (Table 1).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["SIZE", "CLASSES", "TRANSFER_CLASSES", "KEYPOINTS", "FACE_CLASSES", "render",
           "Pose", "random_pose", "canonical_pose"]

SIZE = 128
VERSION = 3   # the embedded dataset's format version; bump when the renderer changes
KEYPOINTS = ("left_eye", "right_eye", "nose")
#: the world's clutter: background leaves (fewest, most), loose parts (fewest, most), the
#: chance that leaves fall in front of the object, and how many (fewest, most)
STYLE = {"leaves": (80, 220), "loose": (1, 6), "occluded": 0.5, "occluders": (1, 4)}
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


# ----------------------------------------------------------------------------- background
def natural_colour(rng, chroma=40.0):
    """A colour as photographs have them: a luminance, plus a smaller zero-mean chroma."""
    lum = rng.uniform(15, 240)
    c = rng.normal(0.0, chroma, 3)
    c = c - (c[0] + c[1] + c[2]) / 3
    return np.clip(np.round(lum + c), 0, 255)


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


# ----------------------------------------------------------------------------- poses
@dataclass
class Pose:
    """Where an object stands: centre (px), radius (px: the object's frame [-1, 1] maps to
    ±radius), rotation (whole degrees, clockwise on screen) and mirror."""
    cx: float
    cy: float
    radius: float
    deg: int = 0
    mirror: bool = False

    def point(self, u, v):
        """Object frame (u right, v down) → image (x, y)."""
        if self.mirror:
            u = -u
        c, s = _cs(self.deg)
        return self.cx + self.radius * (u * c - v * s), self.cy + self.radius * (u * s + v * c)

    def angle(self, deg):
        """An angle given in the object frame, in the image."""
        return (-deg if self.mirror else deg) + self.deg

    def length(self, x):
        return x * self.radius


def canonical_pose(radius=34.0):
    return Pose(SIZE / 2, SIZE / 2, float(radius), 0, False)


# ----------------------------------------------------------------------------- parts
@dataclass
class Painter:
    """Paints parts given in an object's frame, in pose, with the object's colours."""
    canvas: Canvas
    pose: Pose
    colours: dict
    rng: np.random.Generator
    keypoints: dict = field(default_factory=dict)

    def _paint(self, prim, role, texture=False):
        if prim is None or prim[1] is None:
            return
        box, alpha = prim
        colour = self.colours[role] if isinstance(role, str) else role
        fill = _texture(self.rng, box, colour, self.pose.deg) if texture else colour
        self.canvas.paint(box, alpha, self._lit(box, fill))

    def _lit(self, box, fill):
        """The object's light: a linear ramp across the image, fixed for the object."""
        k, c, s = self.colours["light_k"], self.colours["light_c"], self.colours["light_s"]
        if k == 0:
            return fill
        t, l, b, r = box
        p = ((_XS[t:b, l:r] - self.pose.cx) * c + (_YS[t:b, l:r] - self.pose.cy) * s) / (2 * self.pose.radius)
        return np.clip(fill * (1 + k * p)[..., None], 0, 255)

    # primitives in the object frame
    def disc(self, u, v, r, role="body", texture=False):
        x, y = self.pose.point(u, v)
        self._paint(disc(x, y, self.pose.length(r)), role, texture)

    def ring(self, u, v, r, w, role="dark"):
        x, y = self.pose.point(u, v)
        self._paint(ring(x, y, self.pose.length(r), self.pose.length(w)), role)

    def ellipse(self, u, v, a, b, deg=0, role="body", texture=False):
        x, y = self.pose.point(u, v)
        self._paint(ellipse(x, y, self.pose.length(a), self.pose.length(b), self.pose.angle(deg)), role, texture)

    def rect(self, u, v, hw, hh, deg=0, role="body", rounding=0.0, texture=False):
        x, y = self.pose.point(u, v)
        self._paint(rect(x, y, self.pose.length(hw), self.pose.length(hh), self.pose.angle(deg),
                         self.pose.length(rounding)), role, texture)

    def stroke(self, u1, v1, u2, v2, w, role="dark"):
        x1, y1 = self.pose.point(u1, v1)
        x2, y2 = self.pose.point(u2, v2)
        self._paint(capsule(x1, y1, x2, y2, max(self.pose.length(w), 1.0)), role)

    def poly(self, pts, role="body", texture=False):
        self._paint(polygon([self.pose.point(u, v) for u, v in pts]), role, texture)

    def mark(self, name, u, v):
        self.keypoints[name] = self.pose.point(u, v)


# shared parts: every class below is made of these
def eye(p: Painter, u, v, r, look=None):
    """A white disc with a dark pupil (faces, owls, fish, birds, butterfly wings)."""
    p.disc(u, v, r, "light")
    du, dv = look if look is not None else p.rng.uniform(-0.25, 0.25, 2) * r
    p.disc(u + du, v + dv, r * 0.5, "dark")


def wheel(p: Painter, u, v, r):
    """A dark tyre around a light hub (cars, buses, trucks, bicycles)."""
    p.disc(u, v, r, "dark")
    p.disc(u, v, r * 0.45, "light")


def window(p: Painter, u, v, hw, hh):
    """A light pane in a dark frame, sometimes with a cross bar (houses, vehicles, towers)."""
    p.rect(u, v, hw, hh, 0, "dark")
    p.rect(u, v, hw * 0.75, hh * 0.75, 0, "light")
    if p.rng.random() < 0.4:
        p.stroke(u, v - hh * 0.75, u, v + hh * 0.75, min(hw, hh) * 0.15, "dark")


def leg(p: Painter, u1, v1, u2, v2, w, bend=None, role="dark"):
    """A stroke, straight or bent at a knee (spiders, beetles, tables, birds)."""
    if bend is None:
        p.stroke(u1, v1, u2, v2, w, role)
    else:
        p.stroke(u1, v1, bend[0], bend[1], w, role)
        p.stroke(bend[0], bend[1], u2, v2, w, role)


def petal(p: Painter, u, v, length, width, deg, role="part"):
    """An ellipse pointing along ``deg`` from (u, v) (flowers, wings, leaves, ears)."""
    c, s = _cs(deg)
    p.ellipse(u + c * length, v + s * length, length, width, deg, role)


def _kp_eyes(p, lu, lv, ru, rv, nu, nv):
    p.mark("left_eye", lu, lv)
    p.mark("right_eye", ru, rv)
    p.mark("nose", nu, nv)


# ----------------------------------------------------------------------------- classes
def _face(p):
    p.disc(0, 0, 0.9, "body", texture=p.rng.random() < 0.3)
    ex, ey = p.rng.uniform(0.28, 0.4), p.rng.uniform(-0.3, -0.12)
    eye(p, -ex, ey, 0.15)
    eye(p, ex, ey, 0.15)
    p.poly([(0, 0.0), (0.13, 0.25), (-0.13, 0.25)], "part")
    p.stroke(-0.3, 0.52, 0.3, 0.52, 0.1, "dark")
    _kp_eyes(p, -ex, ey, ex, ey, 0, 0.17)


def _cat(p):
    for s in (-1, 1):
        p.poly([(s * 0.75, -0.05), (s * 0.62, -0.98), (s * 0.12, -0.55)], "body")
        p.poly([(s * 0.62, -0.2), (s * 0.58, -0.78), (s * 0.28, -0.5)], "part")
    p.disc(0, 0.12, 0.78, "body", texture=p.rng.random() < 0.4)
    for s in (-1, 1):
        p.ellipse(s * 0.32, -0.05, 0.15, 0.09, 0, "light")
        p.ellipse(s * 0.32, -0.05, 0.05, 0.09, 0, "dark")
        for dv in (-0.05, 0.08):
            p.stroke(s * 0.2, 0.3, s * 0.85, 0.3 + dv * 2, 0.03, "dark")
    p.poly([(-0.09, 0.2), (0.09, 0.2), (0, 0.3)], "part")
    _kp_eyes(p, -0.32, -0.05, 0.32, -0.05, 0, 0.24)


def _dog(p):
    p.ellipse(0, 0.05, 0.62, 0.8, 0, "body", texture=p.rng.random() < 0.3)
    for s in (-1, 1):
        p.ellipse(s * 0.68, 0.05, 0.2, 0.5, s * 15, "part")
    eye(p, -0.25, -0.2, 0.12)
    eye(p, 0.25, -0.2, 0.12)
    p.ellipse(0, 0.38, 0.32, 0.25, 0, "light")
    p.ellipse(0, 0.28, 0.13, 0.09, 0, "dark")
    if p.rng.random() < 0.5:
        p.ellipse(0, 0.62, 0.09, 0.13, 0, "accent")
    _kp_eyes(p, -0.25, -0.2, 0.25, -0.2, 0, 0.28)


def _owl(p):
    for s in (-1, 1):
        p.poly([(s * 0.2, -0.72), (s * 0.55, -1.0), (s * 0.55, -0.55)], "body")
    p.ellipse(0, 0.05, 0.62, 0.92, 0, "body", texture=p.rng.random() < 0.5)
    for s in (-1, 1):
        p.ellipse(s * 0.55, 0.25, 0.18, 0.55, s * 10, "part")
    eye(p, -0.26, -0.35, 0.23, look=(0, 0))
    eye(p, 0.26, -0.35, 0.23, look=(0, 0))
    p.poly([(-0.08, -0.15), (0.08, -0.15), (0, 0.05)], "accent")
    _kp_eyes(p, -0.26, -0.35, 0.26, -0.35, 0, -0.08)


def _snowman(p):
    p.disc(0, 0.55, 0.45, "light")
    p.disc(0, -0.02, 0.34, "light")
    p.disc(0, -0.55, 0.25, "light")
    for s in (-1, 1):
        p.stroke(s * 0.3, -0.05, s * 0.9, -0.35, 0.05, "dark")
    p.disc(-0.09, -0.6, 0.045, "dark")
    p.disc(0.09, -0.6, 0.045, "dark")
    p.poly([(0, -0.55), (0, -0.48), (0.25, -0.5)], "accent")
    for v in (-0.1, 0.05, 0.4, 0.6):
        p.disc(0, v, 0.04, "dark")
    if p.rng.random() < 0.6:
        p.rect(0, -0.82, 0.2, 0.1, 0, "dark")
    _kp_eyes(p, -0.09, -0.6, 0.09, -0.6, 0.08, -0.51)


def _robot(p):
    p.rect(0, 0.35, 0.5, 0.55, 0, "part", rounding=0.05)
    p.rect(0, -0.4, 0.45, 0.35, 0, "body", rounding=0.08, texture=p.rng.random() < 0.3)
    p.stroke(0, -0.75, 0, -0.95, 0.05, "dark")
    p.disc(0, -0.95, 0.07, "accent")
    window(p, -0.2, -0.45, 0.1, 0.1)
    window(p, 0.2, -0.45, 0.1, 0.1)
    for k in range(4):
        p.rect(-0.2 + 0.13 * k, -0.2, 0.04, 0.04, 0, "dark")
    for s in (-1, 1):
        p.stroke(s * 0.5, 0.1, s * 0.8, 0.5, 0.1, "dark")


def _car(p):
    cab = p.rng.uniform(-0.15, 0.15)
    p.rect(cab, -0.25, 0.5, 0.22, 0, "body", rounding=0.1)
    p.rect(0, 0.05, 0.95, 0.25, 0, "body", rounding=0.1, texture=p.rng.random() < 0.3)
    window(p, cab - 0.22, -0.25, 0.17, 0.13)
    window(p, cab + 0.22, -0.25, 0.17, 0.13)
    wheel(p, -0.55, 0.32, 0.22)
    wheel(p, 0.55, 0.32, 0.22)
    p.disc(0.9, -0.02, 0.06, "accent")


def _bus(p):
    p.rect(0, -0.05, 0.97, 0.42, 0, "body", rounding=0.06, texture=p.rng.random() < 0.3)
    n = int(p.rng.integers(3, 6))
    for k in range(n):
        window(p, -0.72 + 1.3 * k / max(n - 1, 1), -0.2, 0.1, 0.12)
    p.rect(0.8, 0.12, 0.09, 0.18, 0, "dark")
    wheel(p, -0.6, 0.4, 0.17)
    wheel(p, 0.55, 0.4, 0.17)


def _truck(p):
    p.rect(-0.25, -0.12, 0.65, 0.38, 0, "part", texture=p.rng.random() < 0.4)
    p.rect(0.68, 0.0, 0.28, 0.26, 0, "body", rounding=0.05)
    window(p, 0.72, -0.07, 0.13, 0.1)
    for u in (-0.7, -0.35, 0.62):
        wheel(p, u, 0.35, 0.17)


def _bicycle(p):
    r = p.rng.uniform(0.3, 0.4)
    for s in (-1, 1):
        p.ring(s * 0.55, 0.3, r, 0.07, "dark")
        p.disc(s * 0.55, 0.3, 0.05, "dark")
    w = 0.06
    p.stroke(-0.55, 0.3, -0.05, 0.3, w, "body")
    p.stroke(-0.05, 0.3, 0.35, -0.2, w, "body")
    p.stroke(-0.55, 0.3, -0.15, -0.2, w, "body")
    p.stroke(-0.15, -0.2, 0.35, -0.2, w, "body")
    p.stroke(0.55, 0.3, 0.35, -0.2, w, "body")
    p.stroke(0.35, -0.2, 0.3, -0.4, w, "body")
    p.stroke(0.2, -0.42, 0.45, -0.42, w, "dark")
    p.rect(-0.17, -0.28, 0.12, 0.04, 0, "dark")


def _house(p):
    p.rect(0, 0.25, 0.72, 0.6, 0, "body", texture=p.rng.random() < 0.4)
    p.poly([(-0.9, -0.3), (0.9, -0.3), (0, -1.0)], "part")
    if p.rng.random() < 0.7:
        p.rect(0.45, -0.65, 0.08, 0.2, 0, "part")
    p.rect(0.0, 0.58, 0.14, 0.27, 0, "dark")
    for u, v in ((-0.4, 0.05), (0.4, 0.05), (-0.4, 0.5), (0.4, 0.5))[:int(p.rng.integers(2, 5))]:
        window(p, u, v, 0.14, 0.12)


def _tower(p):
    p.rect(0, 0.05, 0.38, 0.95, 0, "body", texture=p.rng.random() < 0.3)
    rows = int(p.rng.integers(4, 7))
    for i in range(rows):
        for s in (-1, 1):
            window(p, s * 0.17, -0.72 + 1.45 * i / (rows - 1), 0.09, 0.08)
    p.stroke(0, -0.9, 0, -1.0, 0.04, "dark")


def _flower(p):
    p.stroke(0, 0.1, 0, 1.0, 0.07, "part")
    petal(p, 0.0, 0.7, 0.25, 0.1, -30, "part")
    n = int(p.rng.integers(5, 8))
    a0 = int(p.rng.integers(0, 360))
    for k in range(n):
        petal(p, 0, -0.3, 0.32, 0.15, a0 + k * 360 // n, "body")
    p.disc(0, -0.3, 0.15, "accent")


def _sunflower(p):
    n = int(p.rng.integers(12, 19))
    a0 = int(p.rng.integers(0, 360))
    for k in range(n):
        petal(p, 0, 0, 0.45, 0.09, a0 + k * 360 // n, "body")
    p.disc(0, 0, 0.5, "dark", texture=p.rng.random() < 0.5)
    p.ring(0, 0, 0.5, 0.06, "accent")


def _tree(p):
    p.rect(0, 0.55, 0.12, 0.45, 0, "dark")
    k = int(p.rng.integers(3, 6))
    for i in range(k):
        u, v = p.rng.uniform(-0.4, 0.4), p.rng.uniform(-0.55, 0.0)
        p.disc(u, v, p.rng.uniform(0.3, 0.45), "body", texture=p.rng.random() < 0.3)


def _spider(p):
    for s in (-1, 1):
        for k in range(4):
            a = -50 + 33 * k
            c, sn = _cs(a)
            knee = (s * (0.2 + 0.45 * c), -0.05 + 0.45 * sn - 0.25)
            leg(p, s * 0.15, 0.0, s * (0.25 + 0.7 * c), 0.1 + 0.8 * sn, 0.05, bend=knee)
    p.ellipse(0, 0.3, 0.3, 0.38, 0, "body", texture=p.rng.random() < 0.3)
    p.disc(0, -0.15, 0.2, "body")
    eye(p, -0.07, -0.22, 0.05, look=(0, 0))
    eye(p, 0.07, -0.22, 0.05, look=(0, 0))


def _beetle(p):
    for s in (-1, 1):
        for v in (-0.2, 0.1, 0.4):
            leg(p, s * 0.3, v, s * 0.8, v + 0.15, 0.06, bend=(s * 0.6, v - 0.15))
    p.ellipse(0, 0.12, 0.48, 0.7, 0, "body")
    p.stroke(0, -0.55, 0, 0.8, 0.04, "dark")
    p.disc(0, -0.68, 0.25, "dark")
    for k in range(int(p.rng.integers(2, 7))):
        u, v = p.rng.uniform(-0.3, 0.3), p.rng.uniform(-0.3, 0.6)
        p.disc(u, v, 0.09, "dark")
    for s in (-1, 1):
        p.stroke(s * 0.1, -0.85, s * 0.3, -1.0, 0.03, "dark")


def _fish(p):
    p.poly([(0.55, 0), (0.98, -0.4), (0.98, 0.4)], "part")
    p.poly([(-0.1, -0.3), (0.25, -0.6), (0.3, -0.25)], "part")
    p.ellipse(0, 0, 0.65, 0.35, 0, "body", texture=p.rng.random() < 0.5)
    eye(p, -0.4, -0.08, 0.09)
    p.stroke(-0.2, -0.2, -0.15, 0.2, 0.04, "dark")


def _bird(p):
    for s in (-0.1, 0.1):
        p.stroke(s, 0.4, s + 0.05, 0.85, 0.04, "dark")
    p.ellipse(0.1, 0.1, 0.55, 0.35, 0, "body", texture=p.rng.random() < 0.3)
    p.disc(-0.45, -0.3, 0.25, "body")
    p.poly([(-0.68, -0.35), (-0.68, -0.22), (-0.95, -0.28)], "accent")
    petal(p, 0.05, 0.05, 0.35, 0.15, -20, "part")
    p.poly([(0.55, 0.0), (0.95, -0.25), (0.95, 0.2)], "part")
    eye(p, -0.5, -0.35, 0.07)


def _butterfly(p):
    for s in (-1, 1):
        a_top, a_bot = (-40 if s > 0 else -140), (35 if s > 0 else 145)
        petal(p, 0, -0.05, 0.45, 0.3, a_top, "part")
        petal(p, 0, 0.05, 0.32, 0.2, a_bot, "body")
        c, sn = _cs(a_top)
        eye(p, 0.55 * c, -0.05 + 0.55 * sn, 0.1, look=(0, 0))
        p.stroke(0, -0.45, s * 0.25, -0.9, 0.03, "dark")
    p.rect(0, 0, 0.06, 0.45, 0, "dark", rounding=0.05)


def _table(p):
    p.rect(0, -0.3, 0.95, 0.09, 0, "body", texture=p.rng.random() < 0.4)
    spread = p.rng.uniform(0.6, 0.85)
    for s in (-1, 1):
        p.stroke(s * spread, -0.25, s * spread, 0.7, 0.09, "body")
        p.stroke(s * spread * 0.7, -0.25, s * spread * 0.7, 0.55, 0.07, "part")


def _chair(p):
    p.rect(-0.35, -0.35, 0.08, 0.55, 0, "body")
    p.rect(0.05, 0.15, 0.5, 0.08, 0, "body", texture=p.rng.random() < 0.4)
    for u in (-0.35, 0.45):
        p.stroke(u, 0.2, u, 0.9, 0.08, "body")
    for k in range(int(p.rng.integers(0, 3))):
        p.stroke(-0.35, -0.7 + 0.25 * k, -0.35, -0.5 + 0.25 * k, 0.05, "part")


def _clock(p):
    p.disc(0, 0, 0.92, "dark")
    p.disc(0, 0, 0.82, "light")
    for k in range(12):
        c, s = _cs(30 * k)
        w = 0.07 if k % 3 == 0 else 0.035
        p.stroke(0.68 * c, 0.68 * s, 0.78 * c, 0.78 * s, w, "dark")
    for length, w in ((0.45, 0.08), (0.7, 0.045)):
        c, s = _cs(int(p.rng.integers(0, 360)))
        p.stroke(0, 0, length * c, length * s, w, "dark")
    p.disc(0, 0, 0.07, "accent")


def _starfish(p):
    a0 = int(p.rng.integers(0, 72))
    for k in range(5):
        c, s = _cs(a0 + 72 * k)
        c2, s2 = _cs(a0 + 72 * k + 90)
        p.poly([(0.25 * c2, 0.25 * s2), (0.95 * c, 0.95 * s), (-0.25 * c2, -0.25 * s2)], "body")
    p.disc(0, 0, 0.3, "body")
    for k in range(int(p.rng.integers(3, 9))):
        c, s = _cs(int(p.rng.integers(0, 360)))
        rr = p.rng.uniform(0.0, 0.55)
        p.disc(rr * c, rr * s, 0.05, "light")


# the transfer family: other classes, made of the same parts
def _boat(p):
    p.poly([(-0.95, 0.35), (0.95, 0.35), (0.6, 0.75), (-0.6, 0.75)], "body")
    p.stroke(0, 0.35, 0, -0.95, 0.05, "dark")
    p.poly([(0.05, -0.9), (0.05, 0.25), (0.75, 0.25)], "part", texture=p.rng.random() < 0.4)
    if p.rng.random() < 0.7:
        p.poly([(-0.05, -0.7), (-0.05, 0.25), (-0.6, 0.25)], "light")
    for u in (-0.5, 0.0, 0.5)[:int(p.rng.integers(1, 4))]:
        p.disc(u, 0.52, 0.07, "light")


def _rocket(p):
    for s in (-1, 1):
        p.poly([(s * 0.2, 0.3), (s * 0.5, 0.85), (s * 0.2, 0.75)], "part")
    p.rect(0, 0.05, 0.22, 0.7, 0, "body", rounding=0.1, texture=p.rng.random() < 0.3)
    p.poly([(-0.22, -0.6), (0.22, -0.6), (0, -1.0)], "part")
    p.disc(0, -0.2, 0.12, "dark")
    p.disc(0, -0.2, 0.08, "light")
    p.poly([(-0.15, 0.78), (0.15, 0.78), (0, 1.0)], "accent")


def _cup(p):
    p.ring(0.6, 0.0, 0.25, 0.1, "body")
    p.rect(0, 0.05, 0.5, 0.55, 0, "body", rounding=0.1, texture=p.rng.random() < 0.5)
    p.rect(0, -0.5, 0.5, 0.05, 0, "dark")
    for k in range(int(p.rng.integers(0, 3))):
        p.stroke(-0.2 + 0.2 * k, -0.65, -0.15 + 0.2 * k, -0.95, 0.05, "light")


def _lamp(p):
    p.poly([(-0.25, -0.85), (0.25, -0.85), (0.5, -0.25), (-0.5, -0.25)], "part", texture=p.rng.random() < 0.4)
    p.stroke(0, -0.25, 0, 0.75, 0.07, "dark")
    p.rect(0, 0.82, 0.35, 0.08, 0, "body")
    p.disc(0, -0.2, 0.1, "light")


def _umbrella(p):
    n = int(p.rng.integers(3, 6))
    for k in range(n):
        u = -0.95 + 1.9 * (k + 0.5) / n
        p.ellipse(u, -0.3, 0.95 / n + 0.02, 0.55, 0, "body" if k % 2 else "part")
    p.rect(0, 0.05, 1.0, 0.3, 0, "light")   # cut the canopy flat (painted as sky)
    p.stroke(0, -0.3, 0, 0.75, 0.05, "dark")
    p.ring(0.13, 0.75, 0.13, 0.05, "dark")


def _key(p):
    p.ring(-0.55, 0, 0.3, 0.14, "body")
    p.stroke(-0.25, 0, 0.9, 0, 0.12, "body")
    for u in (0.45, 0.65, 0.85)[:int(p.rng.integers(1, 4))]:
        p.stroke(u, 0, u, 0.25, 0.09, "body")


def _turtle(p):
    for u, v in ((-0.45, -0.45), (0.45, -0.45), (-0.45, 0.45), (0.45, 0.45)):
        p.ellipse(u * 1.3, v * 1.1, 0.18, 0.12, int(math.degrees(math.atan2(v, u))), "part")
    p.disc(0.85, 0, 0.2, "part")
    eye(p, 0.92, -0.06, 0.05)
    p.ellipse(0, 0, 0.7, 0.55, 0, "body")
    for u, v in ((0, 0), (-0.35, -0.22), (0.35, -0.22), (-0.35, 0.22), (0.35, 0.22)):
        p.poly([(u + 0.14 * math.cos(math.radians(60 * k)), v + 0.14 * math.sin(math.radians(60 * k)))
                for k in range(6)], "dark")


def _crab(p):
    for s in (-1, 1):
        for k in range(3):
            leg(p, s * 0.4, 0.1 + 0.12 * k, s * 0.95, 0.45 + 0.15 * k, 0.05, bend=(s * 0.75, 0.05 + 0.15 * k))
        p.stroke(s * 0.35, -0.15, s * 0.6, -0.55, 0.07, "body")
        p.poly([(s * 0.6, -0.55), (s * 0.95, -0.8), (s * 0.55, -0.95)], "body")
        p.stroke(s * 0.12, -0.2, s * 0.18, -0.5, 0.04, "dark")
        eye(p, s * 0.18, -0.55, 0.08, look=(0, 0))
    p.ellipse(0, 0.1, 0.55, 0.35, 0, "body", texture=p.rng.random() < 0.3)


def _train(p):
    p.rect(-0.3, 0.0, 0.6, 0.3, 0, "body", texture=p.rng.random() < 0.3)
    p.rect(0.55, -0.15, 0.3, 0.45, 0, "part")
    window(p, 0.55, -0.3, 0.14, 0.12)
    p.rect(-0.6, -0.45, 0.1, 0.15, 0, "dark")
    for u in (-0.7, -0.25, 0.2, 0.65):
        wheel(p, u, 0.42, 0.16)


def _kite(p):
    p.poly([(0, -0.95), (0.5, -0.2), (0, 0.45), (-0.5, -0.2)], "body", texture=p.rng.random() < 0.5)
    p.stroke(0, -0.95, 0, 0.45, 0.03, "dark")
    p.stroke(-0.5, -0.2, 0.5, -0.2, 0.03, "dark")
    pts = [(0, 0.45), (0.15, 0.65), (-0.1, 0.8), (0.1, 0.98)]
    for a, b in zip(pts, pts[1:]):
        p.stroke(*a, *b, 0.03, "dark")
    for u, v in pts[1:]:
        p.poly([(u - 0.07, v), (u, v - 0.05), (u + 0.07, v), (u, v + 0.05)], "accent")


#: classes as (program, full rotation?)
_PROGRAMS = {
    "face": (_face, False), "cat": (_cat, False), "dog": (_dog, False), "owl": (_owl, False),
    "snowman": (_snowman, False), "robot": (_robot, False), "car": (_car, False), "bus": (_bus, False),
    "truck": (_truck, False), "bicycle": (_bicycle, False), "house": (_house, False),
    "tower": (_tower, False), "flower": (_flower, False), "sunflower": (_sunflower, True),
    "tree": (_tree, False), "spider": (_spider, True), "beetle": (_beetle, True), "fish": (_fish, False),
    "bird": (_bird, False), "butterfly": (_butterfly, True), "table": (_table, False),
    "chair": (_chair, False), "clock": (_clock, True), "starfish": (_starfish, True),
    # transfer family
    "boat": (_boat, False), "rocket": (_rocket, False), "cup": (_cup, False), "lamp": (_lamp, False),
    "umbrella": (_umbrella, False), "key": (_key, True), "turtle": (_turtle, True), "crab": (_crab, True),
    "train": (_train, False), "kite": (_kite, False),
}
CLASSES = ("face", "cat", "dog", "owl", "snowman", "robot", "car", "bus", "truck", "bicycle", "house",
           "tower", "flower", "sunflower", "tree", "spider", "beetle", "fish", "bird", "butterfly",
           "table", "chair", "clock", "starfish")
TRANSFER_CLASSES = ("boat", "rocket", "cup", "lamp", "umbrella", "key", "turtle", "crab", "train", "kite")
FACE_CLASSES = ("face", "cat", "dog", "owl", "snowman")

#: loose parts strewn on the background (clutter): each draws one part in a small pose
_LOOSE = (
    lambda p: eye(p, 0, 0, 0.5),
    lambda p: wheel(p, 0, 0, 0.6),
    lambda p: window(p, 0, 0, 0.5, 0.4),
    lambda p: leg(p, -0.6, -0.6, 0.6, 0.6, 0.15, bend=(0.3, -0.4)),
    lambda p: petal(p, 0, 0, 0.5, 0.22, 0, "part"),
    lambda p: p.poly([(-0.5, 0.4), (0.5, 0.4), (0, -0.6)], "part"),
    lambda p: p.ring(0, 0, 0.5, 0.15, "dark"),
    lambda p: p.rect(0, 0, 0.6, 0.2, 0, "body", rounding=0.1),
)


# ----------------------------------------------------------------------------- images
def random_pose(rng, full_rotation: bool) -> Pose:
    """Radius log-uniform in [18, 56] px, centre so that at least most of the object is in
    view, rotation whole degrees (any, or ±30°), mirrored half of the time."""
    radius = _q(18.0 * (56.0 / 18.0) ** rng.random())
    m = radius * 0.55
    cx, cy = _q(rng.uniform(m, SIZE - m)), _q(rng.uniform(m, SIZE - m))
    deg = int(rng.integers(0, 360)) if full_rotation else int(rng.integers(-30, 31))
    return Pose(cx, cy, radius, deg, bool(rng.random() < 0.5))


def _object_colours(rng, palette, away_from=None):
    body = natural_colour(rng, rng.uniform(20, 80))
    if away_from is not None:
        body = _other_colour(rng, away_from, 120)
    part = _other_colour(rng, body, 120)
    accent = _other_colour(rng, body, 150)
    dark = rng.integers(0, 70, 3).astype(np.float64)
    light = rng.integers(185, 256, 3).astype(np.float64)
    c, s = _cs(int(rng.integers(0, 360)))
    return {"body": body, "part": part, "accent": accent, "dark": dark, "light": light,
            "light_k": _q(rng.uniform(0.0, 0.6)) if rng.random() < 0.7 else 0.0, "light_c": c, "light_s": s}


def render(name: str, rng: np.random.Generator, pose: Pose | None = None, *, clutter: bool = True):
    """Render one image of class ``name``: ``(image uint8 (H, W, 3), mask bool (H, W) of the
    object's visible pixels, keypoints float (3, 2) as (y, x), NaN for classes without)``."""
    if name not in _PROGRAMS:
        raise ValueError(f"unknown class {name!r}; classes are: {', '.join(_PROGRAMS)}")
    program, full = _PROGRAMS[name]
    canvas, palette = background(rng)
    if clutter:   # loose parts behind the object
        for _ in range(int(rng.integers(*STYLE["loose"]))):
            loose = Pose(_q(rng.uniform(0, SIZE)), _q(rng.uniform(0, SIZE)), _q(rng.uniform(4, 14)),
                         int(rng.integers(0, 360)), False)
            _LOOSE[int(rng.integers(len(_LOOSE)))](Painter(canvas, loose, _object_colours(rng, palette), rng))
    pose = pose or random_pose(rng, full)
    box = _window(pose.cx, pose.cy, pose.radius)
    under = canvas.rgb[box[0]:box[2], box[1]:box[3]].reshape(-1, 3).mean(0)
    canvas.cover = np.zeros((SIZE, SIZE))
    painter = Painter(canvas, pose, _object_colours(rng, palette, np.round(under)), rng)
    program(painter)
    cover = canvas.cover
    canvas.cover = None
    if clutter and rng.random() < STYLE["occluded"]:   # leaves in front of the object
        for _ in range(int(rng.integers(*STYLE["occluders"]))):
            x, y = pose.point(*rng.uniform(-1, 1, 2))
            before = canvas.rgb.copy()
            _leaf(rng, canvas, palette, x, y, _q(pose.radius * rng.uniform(0.15, 0.45)))
            hidden = np.abs(canvas.rgb - before).max(axis=2) > 0
            cover = np.where(hidden, 0.0, cover)
    light = _q(rng.uniform(0.75, 1.25))
    gx, gy = _cs(int(rng.integers(0, 360)))
    ramp = 1.0 + (light - 1.0) * (((_XS - SIZE / 2) * gx + (_YS - SIZE / 2) * gy) / SIZE)
    img = canvas.rgb * ramp[..., None] + rng.normal(0.0, 4.0, (SIZE, SIZE, 3))
    out = np.clip(np.floor(img + 0.5), 0, 255).astype(np.uint8)
    kp = np.full((len(KEYPOINTS), 2), np.nan)
    if painter.keypoints:
        pts = {k: painter.keypoints[k] for k in KEYPOINTS}
        if pts["left_eye"][0] > pts["right_eye"][0]:   # "left" is the image's left
            pts["left_eye"], pts["right_eye"] = pts["right_eye"], pts["left_eye"]
        kp = np.array([(pts[k][1], pts[k][0]) for k in KEYPOINTS])
    return out, cover >= 0.5, kp
