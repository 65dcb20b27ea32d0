"""Fast views for widgets whose figure changes only in a few places."""
from __future__ import annotations

import io

import numpy as np


class Blit:
    """A matplotlib figure drawn once; each view redraws only ``artists`` (made animated)
    over the saved background and encodes the canvas as JPEG (blitting: a view costs a few
    ms instead of a full draw of every axis)."""

    def __init__(self, fig, artists):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        self.fig, self.artists = fig, list(artists)
        for a in self.artists:
            a.set_animated(True)
        self.canvas = FigureCanvasAgg(fig)
        self.canvas.draw()                    # lays the figure out, without the artists
        fig.set_layout_engine(None)           # ... and keeps it that way
        self.background = self.canvas.copy_from_bbox(fig.bbox)

    def jpeg(self, quality: int = 75) -> bytes:
        from PIL import Image

        self.canvas.restore_region(self.background)
        for a in self.artists:
            self.fig.draw_artist(a)
        buffer = io.BytesIO()
        Image.fromarray(np.asarray(self.canvas.buffer_rgba())[..., :3]).save(
            buffer, format="jpeg", quality=quality, optimize=True)
        return buffer.getvalue()
