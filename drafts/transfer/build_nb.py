import sys
import nbformat
sys.path.insert(0, "tools")
from chapters import as_figure as fig, tagged

nb = nbformat.read("book/transfer.ipynb", as_version=4)
colab = nb.cells[1]
M = nbformat.v4.new_markdown_cell
C = nbformat.v4.new_code_cell


cells = [
M("""# Transfer to new classes

**What you will learn:** how much a trained network's features are worth on classes it
never saw: a new softmax on frozen features against the same network trained from scratch
and against finetuning every layer, from 1 to 60 images per class; and how well a linear
classifier does on the features of each layer, from conv1 to fc7.

**Reproduces:** Tables 4, 5 and 7 and Fig. 9 (Section 5) of {cite:t}`zeiler2014`, at our
scale.

**Runtime:** about 90 s on a 2-core CPU (the first run computes and caches the features of
4,600 images), well under a minute on a GPU. The networks trained from scratch and finetuned
come from shipped records; the command that made them is shown below."""),
colab,
M("""## The experiment

Zeiler and Fergus take their ImageNet network, freeze layers 1–7 and train only a new
softmax on Caltech-101 and Caltech-256 {cite:p}`feifei2004,griffin2007`. With 30 images per
class it reaches 86.5% on Caltech-101 (Table 4), where the same architecture trained from
scratch on those images gets 46.5%; on Caltech-256 the frozen features with 6 images per
class beat the previous best, which used 60 (Fig. 9).

Our "ImageNet" is the embedded dataset's 12 shape classes, on which `zfnet-mini` was
trained. The new classes are its *transfer family*: 10 other shapes (pentagon, rhombus,
letter-L, chevron, …) drawn by the same renderer on the same cluttered backgrounds, 60
training and 40 test images per class. That is a far smaller jump than ImageNet → Caltech:
12 classes of synthetic shapes rather than 1,000 of photographs, and new classes that
differ from the old ones in outline only. Keep the scale in mind when reading the numbers
beside the paper's.

Three *arms*, on the same seeded draws of training images
([`transfer`](src:zfbook/transfer.py)):

* **frozen** — the paper's setup: features of fc7, a new softmax (multinomial logistic
  regression from scikit-learn) on top;
* **scratch** — the same architecture trained from random weights on the few images with
  the book's trainer;
* **finetune** — every layer trained from the pretrained weights at a small learning rate
  with a new fc8, what practitioners do today (the paper does not).

A *draw* picks the training images of each class at random (seeded); with 5 images per
class it takes the first 5 of a per-class permutation, so the 5-image set lies inside the
10-image set of the same draw. All test images (40 per class) are used every time."""),
C("""%matplotlib inline
import numpy as np
import torch
import zfbook.transfer as T
from zfbook.display import glue, md, paper_vs_ours, table
from zfbook.plot import transfer as plot_transfer
from zfbook.widgets.transfer import transfer_explorer

torch.manual_seed(0)
model, sha, _ = T.resolve_checkpoint("zfnet-mini")
tset = T.transfer_set("embedded-transfer")
arms = T.load_records("transfer")
probes = T.load_records("probes")
print(arms[0]["command"])"""),
M("""The three arms were run once with that command (the scratch and finetune arms train
48 small networks, too slow for a page); the records ship in `data/results/transfer.json`.
The recipes of the two training arms, which the paper leaves to us for tiny data:"""),
tagged(C("""recipes = {r["arm"]: r["recipe"] for r in arms}
rows = []
for arm in ("scratch", "finetune"):
    r = recipes[arm]
    lr = f'{r["lr"]:g}' + (f' (fc8 {r["head_lr"]:g})' if "head_lr" in r else "")
    rows.append((arm, r["epochs"], r["batch_size"], lr,
                 ", ".join(map(str, r["anneal"])), r["epoch_images"]))
table(rows, ["arm", "epochs", "batch", "learning rate", "×0.1 after",
             "images / epoch"],
      caption="Recipes of the two training arms: SGD with momentum 0.9, "
      "weight decay 5e-4, dropout, random crops and flips, filter "
      "renormalisation. The few training images are repeated to fill an "
      "epoch, so every run takes the same number of steps.",
      name="transfer-recipes")"""), "hide-input"),
M("""## Features once, classifiers many

The frozen arm and the probes further down need only the features of each image, so they
are computed once, in one batched pass over all the layers asked for
([`transfer.features`](src:zfbook/transfer.py)), and cached on disk under the checkpoint's
sha256, the split and the layer. Conv maps are max-pooled to at most 6×6 (ZFNet's pool5
grid) and flattened; fc6 and fc7 are taken as they are."""),
tagged(C("""import time

t0 = time.perf_counter()
feats = tset.features(model, sha, T.LAYERS, progress=False)
main = T.transfer_set("embedded-main")
main_feats = main.features(model, sha, T.LAYERS, progress=False)
print(f"features of {len(tset) + len(main)} images, 7 layers: "
      f"{time.perf_counter() - t0:.1f} s")"""), "nbval-ignore-output"),
C("""table([(layer, f"{feats[layer].shape[1]:,}") for layer in T.LAYERS],
      ["layer", "features per image"],
      caption="Size of each layer's features (conv maps max-pooled to 6×6).",
      name="transfer-feature-sizes")"""),
M("""## The three arms across shots

{numref}`transfer-arms` lists the mean accuracy over the draws (± the standard deviation),
{numref}`transfer-low-shot` draws it beside the paper's Caltech-256 curve. With 60 images
per class every draw holds all the training images, so the draws differ only in how the
networks were initialised and fed."""),
C("""acc = T.summarize(arms)
shots = sorted({k for _, k in acc})
draws = {a: max(v[2] for (b, _), v in acc.items() if b == a)
         for a in T.ARMS}
cell = lambda a, k: f"{acc[a, k][0]:.1f} ± {acc[a, k][1]:.1f}"
table([(k, *(cell(a, k) for a in T.ARMS)) for k in shots],
      ["per class", *(f"{a} ({draws[a]} draws)" for a in T.ARMS)],
      caption="Test accuracy (%) on the 10 new classes, mean ± std over "
      "draws.", name="transfer-arms")"""),
fig(C("""plot_transfer.low_shot(arms)"""), "transfer-low-shot",
    "Left: accuracy on the embedded transfer family against training images per class "
    "(log scale), mean ± std over draws, for the three arms. Right: the paper's "
    "Caltech-256 numbers (Table 5), frozen ImageNet features, the same network from "
    "scratch, and the previous best (Bo et al. 2013).",
    "Two line plots of test accuracy against images per class. Left, ours: finetune, "
    "frozen and scratch curves. Right, the paper's Caltech-256: pretrained well above "
    "Bo et al., scratch lowest."),
tagged(C("""m = {a: {k: acc[a, k][0] for k in shots} for a in T.ARMS}
best = {k: max(T.ARMS, key=lambda a: m[a][k]) for k in shots}
frozen_over_scratch = [k for k in shots if m["frozen"][k] > m["scratch"][k]]
fine_over_frozen = [k for k in shots if m["finetune"][k] > m["frozen"][k]]
few = min(k for k in shots if m["frozen"][k] >= m["scratch"][60]) \\
    if any(m["frozen"][k] >= m["scratch"][60] for k in shots) else None
say = lambda ks: ", ".join(map(str, ks)) if ks else "none"
md(f"The frozen softmax beats training from scratch at "
   f"{len(frozen_over_scratch)} of {len(shots)} shot counts "
   f"({say(frozen_over_scratch)} per class). Finetuning beats the frozen "
   f"softmax at {say(fine_over_frozen)} per class. "
   + (f"The frozen features with **{few}** images per class "
      f"({m['frozen'][few]:.1f}%) already match the scratch network "
      f"trained on all 60 ({m['scratch'][60]:.1f}%): Fig. 9's point. "
      if few else "No number of shots lets the frozen features match "
      "the scratch network trained on all 60. ")
   + f"At 60 per class: frozen {m['frozen'][60]:.1f}%, finetune "
   f"{m['finetune'][60]:.1f}%, scratch {m['scratch'][60]:.1f}%.")"""), "remove-input"),
M("""### Recomputed here

The frozen arm is cheap once the features are cached, so the page refits all its softmaxes
from the features computed above and compares them with the shipped records."""),
C("""y = tset.labels.numpy()
fc7 = feats["fc7"].numpy()
diff, same = [], 0
for r in (r for r in arms if r["arm"] == "frozen"):
    tr, te = tset.split(r["shots"], r["draw"], r["seed"])
    res = T.frozen_arm(fc7[tr], y[tr], fc7[te], y[te], r["seed"])
    diff.append(abs(res.top1 - r["top1"]))
    same += res.predictions.tolist() == r["predictions"]
print(f"{len(diff)} frozen records refitted: largest difference "
      f"{max(diff):.2f} points; identical predictions in {same}")"""),
M("""## What the predictions look like

A few test images with each arm's prediction (draw 0, 5 images per class), and the
confusions of the frozen softmax with 60 images per class."""),
C("""_, te = tset.split(5, 0)
test_x, test_y = tset.images(te), y[te]
pred = {r["arm"]: r["predictions"] for r in arms
        if r["shots"] == 5 and r["draw"] == 0}
pick = np.arange(0, len(te), len(te) // 12)[:12]
preds = {a: np.array(pred[a])[pick] for a in ("frozen", "finetune", "scratch")}"""),
fig(C("""plot_transfer.predictions(test_x[pick], test_y[pick], preds, tset.classes)"""),
    "transfer-predictions",
    "Twelve test images of the new classes with their true class and the prediction "
    "of each arm trained on 5 images per class (draw 0): frozen softmax (froz), "
    "finetuned network (fine), network trained from scratch (scra); ✓ correct, ✗ wrong.",
    "A grid of 12 shape images on cluttered backgrounds, each titled with its class "
    "and three predicted classes with ticks and crosses."),
fig(C("""r60 = next(r for r in arms if r["arm"] == "frozen" and r["shots"] == 60
           and r["draw"] == 0)
plot_transfer.confusion(test_y, np.array(r60["predictions"]), tset.classes)"""),
    "transfer-confusion",
    "Confusion matrix of the frozen softmax trained on all 60 images per class: rows "
    "are the true classes, columns the predicted ones, each row in % of its test images.",
    "A 10 by 10 matrix of percentages, darkest on the diagonal, with the largest "
    "off-diagonal cells between similar outlines."),
tagged(C("""from sklearn.metrics import confusion_matrix

cm = confusion_matrix(test_y, r60["predictions"], normalize="true") * 100
np.fill_diagonal(cm, 0)
i, j = np.unravel_index(cm.argmax(), cm.shape)
md(f"The most frequent confusion: **{tset.classes[i]}** taken for "
   f"**{tset.classes[j]}** ({cm[i, j]:.0f}% of its test images).")"""), "remove-input"),
M("""## What each layer knows (Table 7)

The paper's Table 7 puts a linear SVM or a softmax on the features of a single layer and
finds that accuracy rises with depth, with layer 5 already at 86.2% on Caltech-101. We do
the same ([`probes`](src:zfbook/probes.py)) on the transfer family and on the 12 classes the
network was trained on (probes trained on the validation split, tested on the test split).
Both classifiers come from scikit-learn; each feature is standardised on the training
images and C is scikit-learn's default (1)."""),
C("""fam = {"transfer": "embedded-transfer", "main": "embedded-main"}
recs = {f: [r for r in probes if r["dataset"] == d] for f, d in fam.items()}
rows = []
for layer in T.LAYERS:
    row = [layer]
    for f in fam:
        for c in ("svm", "softmax"):
            s = T.summarize(recs[f], ("layer",), classifier=c, shots=60)
            row.append(f"{s[(layer,)][0]:.1f} ± {s[(layer,)][1]:.1f}")
    paper = T.PAPER_TABLE7.get(("svm", layer))
    row.append(f"{paper[0]} / {paper[1]}" if paper else "–")
    rows.append(row)
table(rows, ["layer", "new: SVM", "new: softmax", "trained: SVM",
             "trained: softmax", "paper SVM, Cal-101 / 256"],
      caption="Probe accuracy (%) with 60 images per class, mean ± std over 5 "
      "draws: on the 10 new classes and on the 12 classes the network was "
      "trained on; the paper's SVM rows of Table 7 beside them.",
      name="transfer-probes")"""),
fig(C("""plot_transfer.layer_probes({"new classes": recs["transfer"],
                             "trained classes": recs["main"]})"""),
    "transfer-layers",
    "Accuracy of a linear SVM (left) and a softmax (right) on one layer's frozen "
    "features, 60 images per class, mean ± std over 5 draws: on the new classes and on "
    "the classes the network was trained on; dashed: the paper's Table 7 on Caltech-101 "
    "and Caltech-256 (no layer 6).",
    "Two panels of accuracy against layer conv1 to fc7 with four curves each."),
tagged(C("""def by_layer(f, c):
    s = T.summarize(recs[f], ("layer",), classifier=c, shots=60)
    return {l: s[(l,)][0] for l in T.LAYERS}

new, old = by_layer("transfer", "svm"), by_layer("main", "svm")
peak_new = max(T.LAYERS, key=new.get)
peak_old = max(T.LAYERS, key=old.get)
rises = all(new[a] <= new[b] for a, b in zip(T.LAYERS, T.LAYERS[1:]))
md(f"On the new classes the SVM climbs from {new['conv1']:.1f}% on conv1 "
   f"to a peak of {new[peak_new]:.1f}% on **{peak_new}** "
   f"({'rising at every layer' if rises else 'not rising at every layer'}), "
   f"and reads {new['fc7']:.1f}% on fc7. On the trained classes it peaks "
   f"at {old[peak_old]:.1f}% on **{peak_old}**.")"""), "remove-input"),
M("""### Recomputed here, and the widget

The page refits the softmax probes of draw 0 on every layer and number of shots from the
cached features (56 fits) and compares them with the records; the same predictions feed
the widget below. Slide the number of images per class and pick a layer: the bars are the
accuracy of a softmax on that layer's frozen features, of finetuning and of training from
scratch; under each test image, the three predictions (draw 0)."""),
C("""live, diff = {}, []
shipped = {(r["layer"], r["shots"]): r["top1"] for r in recs["transfer"]
           if r["classifier"] == "softmax" and r["draw"] == 0}
for (layer, k), top1 in shipped.items():
    tr, te = tset.split(k, 0)
    x = feats[layer].numpy()
    res = T.probe("softmax", x[tr], y[tr], x[te], y[te])
    live[layer, k] = res.predictions
    diff.append(abs(res.top1 - top1))
print(f"{len(diff)} softmax probes refitted: largest difference "
      f"{max(diff):.2f} points")"""),
C("""transfer_explorer(arms, recs["transfer"], test_x, test_y, live,
                  tset.classes, shots=shots, layers=T.LAYERS)"""),
M("""## Summary

* Features learned on 12 shape classes transfer to 10 new ones: a new softmax on frozen
  fc7 features, the paper's recipe, is the arm that needs no training of the network.
* The records, the tables and {numref}`transfer-low-shot` say at which number of images per
  class each arm wins; the sentences under them are computed from those numbers.
* Table 7's probes rise with depth in the paper; {numref}`transfer-layers` shows where ours
  peak, on the new classes and on the trained ones.
* All of it is cheap once the features are cached; only the scratch and finetune arms
  train networks, and their records ship with the book."""),
M("""## Exercises

1. Re-run one scratch record: `python -m zfbook transfer --checkpoint zfnet-mini
   --arms scratch --shots 1 --draws 1 --out /tmp/t` and compare it with the shipped one
   (CPU training is deterministic).
2. Probe the raw conv maps instead of the 6×6 max-pooled ones (`--pooling none`,
   conv2…conv5). Does the ordering of the layers change?
3. Probe an early snapshot (`zfbook.pretrained("zfnet-mini", epoch=2)` saved to a file, or
   `data/zfnet-mini-epoch2.pt`): at which layers do the features of an undertrained
   network fall behind?
4. With Caltech-101 on disk, run the paper's protocol:
   `python -m zfbook transfer --checkpoint zfnet-mini --dataset caltech101
   --data-root DIR --arms frozen --shots 15,30 --draws 5 --out runs/cal101`."""),
M("""## What the paper reported vs what we measured"""),
C("""pv = [
    ("frozen softmax, 30 per class", "86.5% (Table 4, Caltech-101)",
     f"{m['frozen'][30]:.1f}% (10 new shapes)"),
    ("from scratch, 30 per class", "46.5% (Table 4, Caltech-101)",
     f"{m['scratch'][30]:.1f}%"),
    ("frozen softmax, 60 per class", "74.2% (Table 5, Caltech-256)",
     f"{m['frozen'][60]:.1f}%"),
    ("from scratch, 60 per class", "38.8% (Table 5, Caltech-256)",
     f"{m['scratch'][60]:.1f}%"),
    ("finetune, 60 per class", "not in the paper",
     f"{m['finetune'][60]:.1f}%"),
    ("SVM on layer 1", "44.8% (Table 7, Cal-101)", f"{new['conv1']:.1f}%"),
    ("SVM on layer 5", "86.2% (Table 7, Cal-101)", f"{new['conv5']:.1f}%"),
    ("SVM on layer 7", "85.5% (Table 7, Cal-101)", f"{new['fc7']:.1f}%"),
]
paper_vs_ours(pv, name="transfer-paper-vs-ours")"""),
]
nb.cells = cells
nbformat.write(nb, "book/transfer.ipynb")
print(len(cells), "cells")
