"""The two verbs for anyone's model and images, end to end, against their time budgets.

(a) ``python -m zfbook visualize --model zfnet-mini --layers conv1,…,conv5`` over a folder
    of 1,000 PNG images (the embedded test split's first 1,000, written once to a temporary
    folder), default maps (0-15 per layer), k = 9: seconds ÷ 60.
(b) ``python -m zfbook occlude --model torchvision:alexnet`` (built without weights) on one
    224-px image (an embedded test image resized), patch 32, stride 8 (625 placements):
    seconds ÷ 20.

Each is one ``python -m zfbook`` process, timed from start to exit (imports included). The
maps these commands write are checked by ``tests/test_visualize.py`` and
``tests/test_occlude_cli.py`` against the plain search and direct forward passes.

    OMP_NUM_THREADS=2 python benchmarks/bench_visualize.py
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(args) -> float:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "zfbook", *args], capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode:
        sys.exit(f"failed: {' '.join(args)}\n{r.stderr[-2000:]}")
    return dt


def main() -> None:
    from PIL import Image
    from zfbook.data.embedded import embedded
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}")
    data = embedded("test")
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        (d / "imgs").mkdir()
        for i in range(1000):
            Image.fromarray(data.images[i].permute(1, 2, 0).numpy()).save(d / "imgs" / f"{i:04d}.png")
        Image.fromarray(data.images[0].permute(1, 2, 0).numpy()).resize((224, 224)).save(d / "one.png")
        vis = timed(["visualize", "--model", "zfnet-mini", "--images", str(d / "imgs"), "--layers",
                     "conv1,conv2,conv3,conv4,conv5", "--out", str(d / "vis"), "--no-progress"])
        n_png = len(list((d / "vis").rglob("*.png")))
        occ = timed(["occlude", "--model", "torchvision:alexnet", "--image", str(d / "one.png"),
                     "--patch", "32", "--stride", "8", "--out", str(d / "occ")])
    print(f"{'command':<62}{'seconds':>9}{'budget':>8}{'ratio':>7}")
    print(f"{'(a) visualize zfnet-mini conv1-conv5, 1,000 images (' + str(n_png) + ' PNGs)':<62}{vis:>9.1f}{60:>8}{vis / 60:>7.2f}")
    print(f"{'(b) occlude torchvision:alexnet, 224 px, patch 32 stride 8':<62}{occ:>9.1f}{20:>8}{occ / 20:>7.2f}")


if __name__ == "__main__":
    main()
