"""The README's picture: what four conv4 feature maps of the shipped zfnet-mini respond to
(Fig. 2 of the paper, at our scale), drawn by the library itself.

    .venv/bin/python tools/readme_picture.py [OUT.png]   # default _static/readme-conv4.png

For each map: the deconvnet projections of its 9 strongest activations over 1,200 test
images (left) beside the image patches they come from (right), as in the chapter "What the
features respond to". Saved with a 256-colour palette to stay under 200 kB. Deterministic:
the same checkpoint and dataset give the same PNG.
"""
from __future__ import annotations

import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from PIL import Image  # noqa: E402

import zfbook  # noqa: E402
from zfbook import plot, topk  # noqa: E402
from zfbook.data import embedded  # noqa: E402

LAYER, N_MAPS, SEED = "conv4", 4, 0


def picture(out: Path) -> Path:
    torch.manual_seed(0)
    model = zfbook.pretrained("zfnet-mini")
    x = model.preprocess.center(embedded("test").images[:1200])
    top = topk.top_activations(model, x, [LAYER], k=9, progress=False)[LAYER]
    fig = plot.fig2(model, x, top, plot.fig2_maps(top, n_maps=N_MAPS, seed=SEED),
                    preprocess=model.preprocess, ncols=2, tile=1.65)
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    buffer.seek(0)
    Image.open(buffer).convert("RGB").quantize(256).save(out, optimize=True)
    return out


if __name__ == "__main__":
    if len(sys.argv) > 2 or (sys.argv[1:] and not sys.argv[1].endswith(".png")):
        sys.exit("error: the one optional argument is the PNG to write, e.g. _static/x.png")
    path = picture(Path(sys.argv[1]) if sys.argv[1:] else ROOT / "_static" / "readme-conv4.png")
    print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB)")
