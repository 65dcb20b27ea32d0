"""Poses and the shared parts every class of the parts world is made of
(:mod:`zfbook.data.world`): eyes, wheels, windows, legs, petals."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .canvas import SIZE, _XS, _YS, Canvas, _cs, _texture, capsule, disc, ellipse, polygon, rect, ring


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
