"""The classes of the parts world (:mod:`zfbook.data.world`), each a small program that
places shared parts in an object frame (u right, v down, the object within [-1, 1]) with
random counts, spacings and colours."""
from __future__ import annotations

import math

from .canvas import _cs
from .parts import _kp_eyes, eye, leg, petal, wheel, window


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
