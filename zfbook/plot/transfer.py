"""Figures of the transfer chapter (Section 5: Tables 4, 5, 7, Fig. 9)."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..transfer import LAYERS, PAPER_TABLE5, PAPER_TABLE7, summarize

__all__ = ["ARM_STYLE", "low_shot", "layer_probes", "confusion", "predictions"]

ARM_STYLE = {"frozen": ("tab:blue", "o", "frozen (new softmax on fc7)"),
             "finetune": ("tab:green", "s", "finetune (all layers)"),
             "scratch": ("tab:red", "^", "from scratch")}


def low_shot(records, arms=("frozen", "finetune", "scratch"), extra=()) -> Figure:
    """Fig. 9 beside ours: accuracy (mean ± std over draws) against images per class.

    Left: ours, from ``records`` (:func:`zfbook.transfer.run_transfer`), plus single runs of
    another recipe (``extra``: records, each drawn as an open marker of its arm's colour
    with ``label``, e.g. a longer scratch run). Right: the paper's Caltech-256 numbers
    (Table 5), typed."""
    fig = Figure(figsize=(6.8, 3.6), layout="constrained")
    a, b = fig.subplots(1, 2)
    for arm in arms:
        s = summarize(records, ("shots",), arm=arm)
        if not s:
            continue
        k = np.array([key[0] for key in s])
        m = np.array([v[0] for v in s.values()])
        e = np.array([v[1] for v in s.values()])
        c, mk, label = ARM_STYLE[arm]
        a.errorbar(k, m, yerr=e, color=c, marker=mk, ms=4, capsize=2, lw=1.2, label=label)
    for r, label in extra:
        c, mk, _ = ARM_STYLE[r["arm"]]
        a.plot([r["shots"]], [r["top1"]], ls="none", marker=mk, ms=7, mfc="none", mec=c, mew=1.5,
               label=label)
    a.set(xscale="log", xlabel="training images per class", ylabel="test accuracy (%)", ylim=(0, 100),
          title="ours: embedded transfer family")
    a.set_xticks([1, 2, 3, 5, 10, 20, 30, 60], labels=["1", "2", "3", "5", "10", "20", "30", "60"])
    # below the axes: inside, it hid the finetune curve
    a.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    for key, (c, mk, label) in (("pretrained", ARM_STYLE["frozen"]), ("scratch", ARM_STYLE["scratch"])):
        pts = PAPER_TABLE5[key]
        b.plot(list(pts), list(pts.values()), color=c, marker=mk, ms=4, lw=1.2,
               label="pretrained, frozen" if key == "pretrained" else "from scratch")
    bo = PAPER_TABLE5["bo2013"]
    b.plot(list(bo), list(bo.values()), color="gray", ls="--", marker=".", lw=1, label="Bo et al. 2013")
    b.set(xlabel="training images per class", ylim=(0, 100), xlim=(0, 64),
          title="paper: Caltech-256 (Table 5)")
    b.legend(fontsize=8, loc="upper left")
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
        ax.title.set_fontsize(9)
    return fig


def layer_probes(records_by_family: dict, shots: int = 60) -> Figure:
    """Table 7 beside ours: mean accuracy of each classifier on each layer's features.

    ``records_by_family``: ``{label: probe records}``; the paper's Caltech-101/256 rows
    (which have no layer 6) are drawn dashed."""
    fig = Figure(figsize=(6.8, 3.0), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    x = np.arange(len(LAYERS))
    for ax, clf in zip(axes, ("svm", "softmax")):
        for (label, recs), c in zip(records_by_family.items(), ("tab:blue", "tab:orange")):
            s = summarize(recs, ("layer",), classifier=clf, shots=shots)
            m = [s.get((l,), (np.nan, 0, 0))[0] for l in LAYERS]
            e = [s.get((l,), (0, 0, 0))[1] for l in LAYERS]
            ax.errorbar(x, m, yerr=e, color=c, marker="o", ms=4, capsize=2, lw=1.2, label=f"ours, {label}")
        for j, (name, c) in enumerate((("Caltech-101", "tab:gray"), ("Caltech-256", "black"))):
            pts = [(i, PAPER_TABLE7[(clf, l)][j]) for i, l in enumerate(LAYERS) if (clf, l) in PAPER_TABLE7]
            if pts:
                ax.plot(*zip(*pts), color=c, ls="--", marker="x", ms=5, lw=1, label=f"paper, {name}")
        ax.set_xticks(x, LAYERS, fontsize=8)
        ax.set(ylim=(0, 100), title=f"{'linear SVM' if clf == 'svm' else 'softmax'} on one layer")
        ax.title.set_fontsize(9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy (%)")
    axes[1].legend(fontsize=7, loc="lower right")
    return fig


def confusion(labels, preds, classes, title: str = "") -> Figure:
    """Confusion matrix (rows: true class, columns: predicted; each row sums to 100%)."""
    from sklearn.metrics import confusion_matrix
    cm = confusion_matrix(labels, preds, labels=range(len(classes)), normalize="true") * 100
    fig = Figure(figsize=(4.6, 4.0), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=100)
    for i in range(len(classes)):
        for j in range(len(classes)):
            if cm[i, j] >= 5:
                ax.text(j, i, f"{cm[i, j]:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if cm[i, j] > 60 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true class")
    if title:
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8, label="% of the class")
    return fig


def predictions(images, labels, preds: dict, classes, ncols: int = 6) -> Figure:
    """Test images (uint8 (N, 3, H, W)) with each arm's prediction under them, ✓ or ✗."""
    n = len(images)
    nrows = int(np.ceil(n / ncols))
    fig = Figure(figsize=(6.8, 1.75 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(images[i].permute(1, 2, 0).numpy())
        lines = [f"{classes[int(labels[i])]}"]
        for arm, p in preds.items():
            ok = "✓" if int(p[i]) == int(labels[i]) else "✗"
            lines.append(f"{arm[:4]}: {classes[int(p[i])]} {ok}")
        ax.set_title("\n".join(lines), fontsize=7, loc="left")
    return fig
