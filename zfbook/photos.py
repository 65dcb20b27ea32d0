"""The photos scikit-image ships, as a folder of images (the appendix "On your own photos").

scikit-image's package carries a few photographs inside it (:data:`PHOTOS`: Chelsea the
cat, a cup of coffee, the astronaut Eileen Collins, a rocket launch, a motorcycle, coins,
textures, a page of text, ...), so they need no download. :func:`write_photos` saves them
as PNG files into a folder, so that they take exactly the path a reader's own folder takes:
:func:`zfbook.sources.read_images` with a model's preprocessing. Grey photos stay grey
(``read_images`` turns them into RGB).

Only images that scikit-image keeps in its own package are listed: others
(``skimage.data.lily``, ``kidney``, ...) are downloaded on first use, which a book that
runs offline cannot do.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["PHOTOS", "photo", "write_photos"]

#: the photographs in scikit-image's package, by the name of their ``skimage.data``
#: function (``motorcycle`` is the left image of ``stereo_motorcycle``)
PHOTOS = ("astronaut", "brick", "camera", "chelsea", "clock", "coffee", "coins", "grass",
          "gravel", "hubble_deep_field", "immunohistochemistry", "moon", "motorcycle",
          "page", "retina", "rocket", "text")


def photo(name: str) -> np.ndarray:
    """One photo of :data:`PHOTOS` as a uint8 array, (H, W, 3) for colour, (H, W) for grey."""
    import skimage.data

    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r}; photos are: {', '.join(PHOTOS)}")
    if name == "motorcycle":
        return skimage.data.stereo_motorcycle()[0]
    return getattr(skimage.data, name)()


def write_photos(folder, names=PHOTOS) -> Path:
    """Save the photos ``names`` as ``NAME.png`` into ``folder`` (created if missing; it
    must hold none of those files yet) and return the folder."""
    from PIL import Image

    names = list(names)
    for name in names:
        if name not in PHOTOS:
            raise ValueError(f"unknown photo {name!r}; photos are: {', '.join(PHOTOS)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    there = [n for n in names if (folder / f"{n}.png").exists()]
    if there:
        raise FileExistsError(f"{folder} already holds {', '.join(f'{n}.png' for n in there)}; "
                              f"give a new folder")
    for name in names:
        tmp = folder / f".{name}.png.tmp"
        Image.fromarray(photo(name)).save(tmp, format="PNG", compress_level=1)
        tmp.replace(folder / f"{name}.png")  # write, then rename: no half-written photo
    return folder
