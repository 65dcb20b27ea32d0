"""The embedded dataset: objects rendered offline from a seed, on cluttered textured backgrounds.

ImageNet is 150 GB and needs the internet; the paper's experiments need something a CPU can
train on in minutes and still has to *learn* edges, parts and shapes. Each image holds one
object of a class, at a random position, scale (radius 26–42 px of 128), rotation (±25°:
objects have an upright pose, as in photographs) and colour, with a textured fill, over a
background of gradients, stripes, blotches and small distractor marks. Every image carries
its label, the object mask and bounding box; the ``face`` and ``cat`` classes also carry
named part keypoints (left eye, right eye, nose — "left" meaning the image's left), for
the correspondence experiment (Table 1).

Two disjoint families come from the same renderer: ``main`` (12 classes, for training) and
``transfer`` (10 other classes, for the transfer chapters, Tables 4–5).

Images are 128×128 — the *resized* stage of the paper's preprocessing (256 there); the
mini presets crop 112×112 from them. Each image is drawn from its own seeded generator
(``numpy.random.default_rng([seed, family, split, index])``) with integer-exact geometry
and 2×2 supersampling, so the same seed gives the same bytes on any machine. Splits are
cached on disk under ``$ZFBOOK_CACHE`` (default ``~/.cache/zfbook``).
"""
from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from . import world as _world

__all__ = ["CLASSES", "TRANSFER_CLASSES", "KEYPOINTS", "SPLITS", "FAMILIES", "SIZE",
           "EmbeddedDataset", "embedded", "render", "aligned", "cache_dir"]

SIZE = 128
CLASSES = ("circle", "square", "triangle", "star", "cross", "ring", "crescent", "hexagon",
           "heart", "arrow", "face", "cat")
TRANSFER_CLASSES = ("pentagon", "rhombus", "ellipse", "letter-L", "letter-T", "hourglass",
                    "semicircle", "trapezoid", "frame", "chevron")
KEYPOINTS = ("left_eye", "right_eye", "nose")
FAMILIES = {"main": CLASSES, "transfer": TRANSFER_CLASSES,
            # the parts world (zfbook.data.world), behind its own names until it replaces main
            "parts": _world.CLASSES, "parts-transfer": _world.TRANSFER_CLASSES}
#: images per class in each split
SPLITS = {
    "main": {"train": 800, "val": 100, "test": 200},
    "transfer": {"train": 60, "test": 40},
    "parts": {"train": 700, "val": 100, "test": 150},
    "parts-transfer": {"train": 60, "val": 20, "test": 60},
}
#: the embedded worlds a run trains on (``--dataset``), each by its training family: the
#: world of the shipped checkpoints, and the parts world (:mod:`zfbook.data.world`)
WORLDS = {"embedded": "main", "parts": "parts"}
_FAMILY_ID = {"main": 0, "transfer": 1, "parts": 2, "parts-transfer": 3}
_SPLIT_ID = {"train": 0, "val": 1, "test": 2, "aligned": 3}
_FORMAT = 2  # bump when the renderer changes: invalidates caches


def _check(kind, value, choices):
    if value not in choices:
        raise ValueError(f"unknown {kind} {value!r}; valid {kind}s are: {', '.join(choices)}")


def cache_dir() -> Path:
    return Path(os.environ.get("ZFBOOK_CACHE", Path.home() / ".cache" / "zfbook"))


# ----------------------------------------------------------------------- shapes
# Every shape is a function of object-frame coordinates (u, v) in roughly [-1, 1],
# v pointing down, returning a boolean "inside" array.
def _poly(u, v, pts):
    """Even-odd point-in-polygon test, vectorised over the grid."""
    inside = np.zeros(u.shape, bool)
    n = len(pts)
    for i in range(n):
        (x1, y1), (x2, y2) = pts[i], pts[(i + 1) % n]
        cond = (y1 > v) != (y2 > v)
        with np.errstate(divide="ignore", invalid="ignore"):
            xint = (x2 - x1) * (v - y1) / (y2 - y1) + x1
        inside ^= cond & (u < xint)
    return inside


def _regular(n, r=1.0, phase=-np.pi / 2):
    a = phase + 2 * np.pi * np.arange(n) / n
    return np.stack([r * np.cos(a), r * np.sin(a)], 1)


def _star(n=5, r1=1.0, r2=0.42):
    a = -np.pi / 2 + np.pi * np.arange(2 * n) / n
    r = np.where(np.arange(2 * n) % 2 == 0, r1, r2)
    return np.stack([r * np.cos(a), r * np.sin(a)], 1)


def _disc(u, v, cx, cy, r):
    return (u - cx) ** 2 + (v - cy) ** 2 <= r * r


_FACE_PARTS = {"left_eye": (-0.38, -0.22), "right_eye": (0.38, -0.22), "nose": (0.0, 0.18)}


def _face_parts(u, v):
    eyes = _disc(u, v, -0.38, -0.22, 0.16) | _disc(u, v, 0.38, -0.22, 0.16)
    nose = _poly(u, v, [(0.0, 0.05), (0.15, 0.3), (-0.15, 0.3)])
    mouth = (np.abs(v - 0.58) <= 0.06) & (np.abs(u) <= 0.38)
    return eyes | nose | mouth


_SHAPES = {
    "circle": lambda u, v: u * u + v * v <= 1.0,
    "square": lambda u, v: np.maximum(np.abs(u), np.abs(v)) <= 0.82,
    "triangle": lambda u, v: _poly(u, v, [(0.0, -1.0), (0.95, 0.75), (-0.95, 0.75)]),
    "star": lambda u, v: _poly(u, v, _star()),
    "cross": lambda u, v: ((np.abs(u) <= 0.3) & (np.abs(v) <= 0.95)) | ((np.abs(v) <= 0.3) & (np.abs(u) <= 0.95)),
    "ring": lambda u, v: (u * u + v * v <= 1.0) & (u * u + v * v >= 0.55 ** 2),
    "crescent": lambda u, v: _disc(u, v, 0, 0, 1.0) & ~_disc(u, v, 0.5, -0.15, 0.8),
    "hexagon": lambda u, v: _poly(u, v, _regular(6, 0.95, 0.0)),
    "heart": lambda u, v: ((1.15 * u) ** 2 + (-1.15 * v + 0.25) ** 2 - 1) ** 3
    - (1.15 * u) ** 2 * (-1.15 * v + 0.25) ** 3 <= 0,
    "arrow": lambda u, v: _poly(u, v, [(0, -1), (0.75, -0.15), (0.3, -0.15), (0.3, 0.95),
                                       (-0.3, 0.95), (-0.3, -0.15), (-0.75, -0.15)]),
    "face": lambda u, v: u * u + v * v <= 0.9 ** 2,
    "cat": lambda u, v: _disc(u, v, 0, 0.1, 0.8) | _poly(u, v, [(-0.75, -0.1), (-0.62, -1.0), (-0.15, -0.6)])
    | _poly(u, v, [(0.75, -0.1), (0.62, -1.0), (0.15, -0.6)]),
    # transfer family
    "pentagon": lambda u, v: _poly(u, v, _regular(5, 1.0)),
    "rhombus": lambda u, v: np.abs(u) / 0.6 + np.abs(v) <= 1.0,
    "ellipse": lambda u, v: (u / 1.0) ** 2 + (v / 0.55) ** 2 <= 1.0,
    "letter-L": lambda u, v: ((u >= -0.7) & (u <= -0.25) & (np.abs(v) <= 0.9))
    | ((v >= 0.45) & (v <= 0.9) & (u >= -0.7) & (u <= 0.7)),
    "letter-T": lambda u, v: ((np.abs(u) <= 0.85) & (v >= -0.9) & (v <= -0.45))
    | ((np.abs(u) <= 0.22) & (v >= -0.9) & (v <= 0.9)),
    "hourglass": lambda u, v: _poly(u, v, [(-0.8, -0.9), (0.8, -0.9), (-0.8, 0.9), (0.8, 0.9)])
    | (np.abs(u) <= np.abs(v) * 0.8 + 0.05) & (np.abs(v) <= 0.9),
    "semicircle": lambda u, v: (u * u + v * v <= 1.0) & (v >= -0.2),
    "trapezoid": lambda u, v: _poly(u, v, [(-0.45, -0.7), (0.45, -0.7), (0.95, 0.7), (-0.95, 0.7)]),
    "frame": lambda u, v: (np.maximum(np.abs(u), np.abs(v)) <= 0.85) & (np.maximum(np.abs(u), np.abs(v)) >= 0.5),
    "chevron": lambda u, v: _poly(u, v, [(-0.9, 0.2), (0, -0.7), (0.9, 0.2), (0.9, 0.75), (0, -0.15), (-0.9, 0.75)]),
}
_HAS_PARTS = {"face", "cat"}


# ----------------------------------------------------------------------- rendering
def _grid(n):
    c = ((np.arange(n) + 0.5) * (SIZE / n)).astype(np.float32)
    return np.meshgrid(c, c)  # x, y in output pixel units


_X2, _Y2 = _grid(2 * SIZE)   # supersampled
_X1, _Y1 = _grid(SIZE)


def _down(a):
    """2×2 box filter: supersampled (2S, 2S[, C]) → (S, S[, C])."""
    return a.reshape(SIZE, 2, SIZE, 2, *a.shape[2:]).mean(axis=(1, 3))


def _colour(rng, away_from=None, min_dist=130.0):
    for _ in range(50):
        c = rng.integers(0, 256, 3).astype(np.float64)
        if away_from is None or np.linalg.norm(c - away_from) >= min_dist:
            return c
    return 255.0 - away_from


def _background(rng):
    x, y = _X1 / SIZE, _Y1 / SIZE
    c0, c1 = rng.integers(0, 256, 3).astype(float), rng.integers(0, 256, 3).astype(float)
    ang = rng.integers(0, 360) * np.pi / 180
    t = (x * np.cos(ang) + y * np.sin(ang))
    t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
    img = c0 + (c1 - c0) * t[..., None]
    # stripes of random orientation, frequency and colour
    ang = rng.integers(0, 180) * np.pi / 180
    freq = rng.integers(3, 14)
    stripes = np.sin(2 * np.pi * freq * (x * np.cos(ang) + y * np.sin(ang)) + rng.random() * 6.283)
    img += stripes[..., None] * (rng.integers(-20, 21, 3).astype(float))
    # blotches: low-resolution noise, blocky
    k = int(rng.choice([8, 16]))
    blot = rng.integers(-15, 16, (SIZE // k, SIZE // k, 3)).astype(float)
    img += np.kron(blot, np.ones((k, k, 1)))
    # distractors: small marks that belong to no class
    for _ in range(rng.integers(3, 8)):
        icx, icy = rng.integers(0, SIZE, 2)
        colour = rng.integers(0, 256, 3).astype(float)
        # work in a 25×25 window around the mark: marks are at most 12 px from their centre
        t, l = max(icy - 12, 0), max(icx - 12, 0)
        win = (slice(t, icy + 13), slice(l, icx + 13))
        du, dv = _X1[win] - (icx + 0.5), _Y1[win] - (icy + 0.5)
        if rng.random() < 0.5:  # short thick segment
            a = rng.integers(0, 180) * np.pi / 180
            L, w = rng.integers(4, 12), rng.integers(1, 3)
            along = du * np.cos(a) + dv * np.sin(a)
            across = -du * np.sin(a) + dv * np.cos(a)
            m = (np.abs(along) <= L) & (np.abs(across) <= w)
        else:  # dot
            m = du ** 2 + dv ** 2 <= rng.integers(2, 6) ** 2
        img[win][m] = colour
    return img


def _fill(rng, colour, bg_mean):
    """Object fill: a solid colour, stripes or checks of a second colour."""
    x, y = _X1 / SIZE, _Y1 / SIZE
    kind = rng.integers(0, 3)
    if kind == 0:
        return np.broadcast_to(colour, x.shape + (3,)).copy()
    second = np.clip(colour + rng.integers(-70, 71, 3), 0, 255)
    if kind == 1:
        ang = rng.integers(0, 180) * np.pi / 180
        t = np.sin(2 * np.pi * rng.integers(6, 16) * (x * np.cos(ang) + y * np.sin(ang))) > 0
    else:
        k = rng.integers(4, 10)
        t = ((np.floor(x * SIZE / k) + np.floor(y * SIZE / k)) % 2) == 0
    return np.where(t[..., None], colour, second)


@dataclass
class _Pose:
    cx: float
    cy: float
    radius: float
    angle_deg: int

    def to_object(self, x, y):
        a = self.angle_deg * np.pi / 180
        dx, dy = (x - self.cx) / self.radius, (y - self.cy) / self.radius
        return dx * np.cos(a) + dy * np.sin(a), -dx * np.sin(a) + dy * np.cos(a)

    def to_image(self, u, v):
        a = self.angle_deg * np.pi / 180
        dx = u * np.cos(a) - v * np.sin(a)
        dy = u * np.sin(a) + v * np.cos(a)
        return self.cy + dy * self.radius, self.cx + dx * self.radius  # (y, x)


def _random_pose(rng) -> _Pose:
    radius = int(rng.integers(26, 43))
    lo, hi = radius - 6, SIZE - radius + 6   # objects may touch the border, barely
    return _Pose(float(rng.integers(lo, hi + 1)), float(rng.integers(lo, hi + 1)), float(radius),
                 int(rng.integers(-25, 26)))


def render(name: str, rng: np.random.Generator, pose: _Pose | None = None):
    """Render one image of class ``name``.

    Returns ``(image uint8 (H, W, 3), mask bool (H, W), keypoints float (K, 2) as (y, x),
    NaN when the class has none)``.
    """
    _check("class", name, _SHAPES)
    img = _background(rng)
    pose = pose or _random_pose(rng)
    bg_mean = img.mean(axis=(0, 1))
    colour = _colour(rng, bg_mean)
    u, v = pose.to_object(_X2, _Y2)
    inside = _SHAPES[name](u, v)
    fg = _fill(rng, colour, bg_mean)
    kp = np.full((len(KEYPOINTS), 2), np.nan)
    if name in _HAS_PARTS:
        parts = _down(_face_parts(u, v).astype(np.float64))[..., None]
        dark = np.clip(colour * 0.25, 0, 255) if colour.mean() > 100 else np.clip(colour + 150, 0, 255)
        fg = fg * (1 - parts) + dark * parts
        kp = np.array([pose.to_image(*_FACE_PARTS[k]) for k in KEYPOINTS])
    alpha = _down(inside.astype(np.float32))[..., None]
    out = img * (1 - alpha) + fg * alpha
    out += rng.normal(0.0, 6.0, out.shape)
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out, alpha[..., 0] >= 0.5, kp


# ----------------------------------------------------------------------- dataset
class EmbeddedDataset(Dataset):
    """A split of the embedded dataset, all in memory.

    ``images`` uint8 (N, 3, 128, 128); ``labels`` int64 (N,); ``masks`` bool (N, 128, 128);
    ``boxes`` int64 (N, 4) as (top, left, bottom, right), bottom/right exclusive;
    ``keypoints`` float32 (N, 3, 2) as (y, x), NaN for classes without parts.
    Items are ``(image, label)``.
    """

    def __init__(self, images, labels, masks, keypoints, classes, family, split, seed):
        self.images, self.labels, self.masks, self.keypoints = images, labels, masks, keypoints
        self.classes, self.family, self.split, self.seed = list(classes), family, split, seed
        self.keypoint_names = KEYPOINTS
        self.boxes = _boxes(masks)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], self.labels[i]

    def __repr__(self):
        return (f"EmbeddedDataset(family={self.family!r}, split={self.split!r}, seed={self.seed}, "
                f"n={len(self)}, classes={len(self.classes)})")

    def sha256(self) -> str:
        """Digest of the image, label, mask and keypoint bytes (reproducibility checks)."""
        h = hashlib.sha256()
        for t in (self.images, self.labels, self.masks, self.keypoints):
            h.update(t.numpy().tobytes())
        return h.hexdigest()


def _boxes(masks: torch.Tensor) -> torch.Tensor:
    rows, cols = masks.any(2), masks.any(1)
    idx = torch.arange(masks.shape[-1])
    big = masks.shape[-1]
    top = torch.where(rows, idx, big).min(1).values
    bottom = torch.where(rows, idx, -1).max(1).values + 1
    left = torch.where(cols, idx, big).min(1).values
    right = torch.where(cols, idx, -1).max(1).values + 1
    return torch.stack([top, left, bottom, right], 1)


def _render_range(family, split, seed, start, stop):
    classes = FAMILIES[family]
    out = []
    draw = _world.render if family.startswith("parts") else render
    for i in range(start, stop):
        rng = np.random.default_rng([seed, _FAMILY_ID[family], _SPLIT_ID[split], i])
        out.append(draw(classes[i % len(classes)], rng))
    return out


def _generate(family, split, seed, per_class, workers=None):
    """Render a split; images are independent (one generator each), so chunks of them are
    rendered in worker processes and the result does not depend on ``workers``."""
    classes = FAMILIES[family]
    n = per_class * len(classes)
    labels = np.arange(n) % len(classes)
    workers = workers or min(os.cpu_count() or 1, 8)
    chunks = [(family, split, seed, a, min(a + 256, n)) for a in range(0, n, 256)]
    if workers > 1 and len(chunks) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        with ProcessPoolExecutor(workers, mp_context=mp.get_context(method)) as pool:
            parts = list(pool.map(_render_range, *zip(*chunks)))
    else:
        parts = [_render_range(*c) for c in chunks]
    flat = [r for part in parts for r in part]
    images = np.stack([r[0] for r in flat])
    masks = np.stack([r[1] for r in flat])
    kps = np.stack([r[2] for r in flat]).astype(np.float32)
    return (torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels).long(),
            torch.from_numpy(masks), torch.from_numpy(kps))


def embedded(split: str = "train", family: str = "main", seed: int = 0, *, per_class: int | None = None,
             cache: bool = True) -> EmbeddedDataset:
    """Load (generating and caching on first use) a split of the embedded dataset.

    ``split``: "train", "val" or "test" ("train"/"test" for the transfer family).
    ``per_class`` overrides the split's size (images per class); the first images of a
    split are the same whatever its size.
    """
    _check("family", family, FAMILIES)
    _check("split", split, SPLITS[family])
    per_class = per_class or SPLITS[family][split]
    version = _world.VERSION if family.startswith("parts") else _FORMAT
    path = cache_dir() / f"embedded-v{version}-{family}-{split}-s{seed}-n{per_class}.pt"
    tensors = None
    if cache and path.exists():
        try:
            d = torch.load(path, weights_only=True)
            masks = d["masks"]
            if masks.dtype == torch.uint8:   # packed 8 pixels a byte
                masks = torch.from_numpy(np.unpackbits(masks.numpy(), axis=-1).astype(bool))
            tensors = d["images"], d["labels"], masks, d["keypoints"]
        except Exception:
            tensors = None  # a damaged cache is regenerated
    if tensors is None:
        tensors = _generate(family, split, seed, per_class)
        if cache:
            blob = dict(zip(("images", "labels", "masks", "keypoints"), tensors))
            blob["masks"] = torch.from_numpy(np.packbits(blob["masks"].numpy(), axis=-1))
            _write_cache(path, blob)
    return EmbeddedDataset(*tensors, FAMILIES[family], family, split, seed)


def _write_cache(path: Path, blob: dict) -> None:
    """Cache a split (atomically); if that fails (a full disk, a read-only cache folder), say so
    in one line, leave nothing half-written, and carry on without the cache."""
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            torch.save(blob, f)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        reason = getattr(e, "strerror", None) or (str(e).strip().splitlines() or [type(e).__name__])[0]
        print(f"warning: could not cache the embedded dataset in {path.parent} ({reason}); "
              "continuing without the cache (set ZFBOOK_CACHE to another folder)", file=sys.stderr)
    finally:
        if tmp.exists():
            tmp.unlink()


def aligned(n: int = 5, seed: int = 0, name: str = "face", radius: int = 34, *, family: str = "main",
            jitter: int = 0) -> EmbeddedDataset:
    """``n`` images of ``name`` in one pose (upright, unmirrored, of one size) on different
    backgrounds, colours and fills: the aligned images of the correspondence test (Table 1).
    ``jitter``: each centre moves by up to that many pixels each way (0: every image centred,
    so a part sits at the same pixels in all of them; the paper's dogs are frontal but not
    pixel-aligned, and only then does masking a part differ from masking a place).
    ``family="parts"``: the parts world's face classes."""
    _check("family", family, ("main", "parts"))
    faces = sorted(_HAS_PARTS) if family == "main" else list(_world.FACE_CLASSES)
    if name not in faces:
        raise ValueError(f"aligned images need a class with keypoints; choose from {faces}")
    if not isinstance(jitter, int) or not 0 <= jitter <= SIZE // 4:
        raise ValueError(f"jitter is a whole number of pixels from 0 to {SIZE // 4}, got {jitter!r}")
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, 9, _SPLIT_ID["aligned"], i] + ([_FAMILY_ID[family]] if family != "main" else []))
        dy, dx = (rng.integers(-jitter, jitter + 1, 2) if jitter else (0, 0))
        if family == "main":
            out.append(render(name, rng, _Pose(SIZE / 2 + dx, SIZE / 2 + dy, float(radius), 0)))
        else:
            out.append(_world.render(name, rng, _world.Pose(SIZE / 2 + int(dx), SIZE / 2 + int(dy), float(radius))))
    images = torch.from_numpy(np.stack([o[0] for o in out])).permute(0, 3, 1, 2).contiguous()
    masks = torch.from_numpy(np.stack([o[1] for o in out]))
    kps = torch.from_numpy(np.stack([o[2] for o in out]).astype(np.float32))
    classes = FAMILIES[family]
    labels = torch.full((n,), classes.index(name), dtype=torch.long)
    return EmbeddedDataset(images, labels, masks, kps, classes, family, "aligned", seed)
