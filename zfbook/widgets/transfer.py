"""The transfer chapter's widget: slide the shots per class and the layer (Section 5)."""
from __future__ import annotations

import numpy as np
import matplotlib.pyplot as plt

from . import Explorer, dropdown, slider
from ..transfer import summarize

__all__ = ["transfer_explorer"]


def transfer_explorer(arm_records, probe_records, images, labels, live, classes, *, shots, layers,
                      n_images: int = 4, width: int = 680) -> Explorer:
    """An :class:`Explorer` over (shots, layer).

    Each view: accuracy (mean ± std over draws) of a softmax on the chosen layer's frozen
    features (``probe_records``), of finetuning and of training from scratch
    (``arm_records``) at that many images per class, and ``n_images`` test images with the
    predictions of draw 0: ``live[(layer, shots)]`` for the frozen layer, the records'
    ``predictions`` for the other two. ``images``/``labels``: the test images in the order of
    the predictions.
    """
    pick = np.linspace(0, len(labels) - 1, n_images).round().astype(int)
    arm_pred = {(r["arm"], r["shots"]): r["predictions"] for r in arm_records if r["draw"] == 0}
    arm_acc = summarize(arm_records, ("arm", "shots"))
    probe_acc = summarize(probe_records, ("layer", "shots"), classifier="softmax")

    def render(shots, layer):
        fig = plt.figure(figsize=(6.8, 2.3), layout="constrained")
        grid = fig.add_gridspec(1, 1 + n_images, width_ratios=[1.6] + [1] * n_images)
        ax = fig.add_subplot(grid[0])
        bars = [(f"softmax\non {layer}", probe_acc.get((layer, shots)), "tab:blue"),
                ("finetune", arm_acc.get(("finetune", shots)), "tab:green"),
                ("scratch", arm_acc.get(("scratch", shots)), "tab:red")]
        for i, (name, acc, c) in enumerate(bars):
            if acc:
                ax.bar(i, acc[0], yerr=acc[1], color=c, capsize=2)
                ax.text(i, 3, f"{acc[0]:.0f}", ha="center", fontsize=8, color="white")
        ax.set_xticks(range(3), [b[0] for b in bars], fontsize=7)
        ax.set_ylim(0, 100)
        ax.set_ylabel("test accuracy (%)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_title(f"{shots} per class", fontsize=8)
        preds = {layer: live.get((layer, shots)), "fine": arm_pred.get(("finetune", shots)),
                 "scr": arm_pred.get(("scratch", shots))}
        for j, i in enumerate(pick):
            a = fig.add_subplot(grid[1 + j])
            a.imshow(images[i].permute(1, 2, 0).numpy())
            a.axis("off")
            lines = [classes[int(labels[i])]]
            for name, p in preds.items():
                if p is not None:
                    mark = "✓" if int(p[i]) == int(labels[i]) else "✗"
                    lines.append(f"{name}: {classes[int(p[i])]} {mark}")
            a.set_title("\n".join(lines), fontsize=7, loc="left")
        return fig

    return Explorer(render, slider("shots", list(shots), label="images per class"),
                    dropdown("layer", list(layers)), image_format="jpeg", width=width, dpi=80)
