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

import numpy as np

from .background import STYLE, _leaf, background
from .canvas import SIZE, _XS, _YS, _cs, _q, _other_colour, _window, capsule, disc, ellipse, natural_colour, polygon, rect, ring
from .classes import _LOOSE, _PROGRAMS, CLASSES, FACE_CLASSES, TRANSFER_CLASSES
from .parts import Painter, Pose, canonical_pose, eye, leg, petal, wheel, window

__all__ = ["SIZE", "VERSION", "CLASSES", "TRANSFER_CLASSES", "KEYPOINTS", "FACE_CLASSES", "STYLE", "render",
           "Pose", "random_pose", "canonical_pose", "background", "natural_colour",
           # the primitives and shared parts, for readers who build a class of their own
           "disc", "ring", "ellipse", "rect", "capsule", "polygon", "Painter", "eye", "wheel", "window",
           "leg", "petal"]

VERSION = 3   # the embedded dataset's format version; bump when the renderer changes
KEYPOINTS = ("left_eye", "right_eye", "nose")


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
