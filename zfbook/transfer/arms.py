"""The three arms (frozen, scratch, finetune), their recipes (:data:`FROZEN`, :data:`SCRATCH`,
:data:`FINETUNE`) and the seed of each training run."""
from __future__ import annotations

import copy
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import models
from ..probes import CS, MAX_FOLDS, probe, probe_cv

#: The scratch arm's recipe for a few images (trainer ``Config`` fields, plus ``epoch_images``):
#: the training images are repeated until an epoch holds at least ``epoch_images`` of them
#: (600, the 60-shot set of the transfer family), and a run lasts ``passes`` passes over its
#: training images, at least ``min_epochs`` such epochs (:func:`scratch_schedule`: 4 epochs
#: for 1–2 shots per class, 100 for 60), with one ×0.1 after ``anneal_at`` of them. A fixed
#: number of steps (20 epochs of 600 whatever the shots) left 20 and more shots per class far
#: from fitting (training loss 1.1–2.3, test 12–22%), while one run of 100 passes at 60 shots
#: ended at 0.11 and 83%; 10 shots needed about 100 passes too (0.17 after 120, 0.9 after 72).
#: SGD with the paper's momentum, weight decay, dropout and filter renormalisation; no plateau
#: schedule (``patience`` never runs out); batch 16 rather than 32 for twice the steps. The
#: trainer's validation split is one training image per class (it is only logged). The test
#: images are never seen during training. The learning rate is half the preset's: at 0.01,
#: one image per class (draw 0) blew the loss up to 50 in epoch 3 and left a dead network at
#: chance; at 0.005 it fits its 10 images.
SCRATCH = {"passes": 100, "min_epochs": 4, "anneal_at": 0.75, "batch_size": 16, "lr": 0.005,
           "epoch_images": 600}
#: The frozen arm as the paper sets it up: a softmax on the centre crop's fc7 features, C = 1.
FROZEN = {"classifier": "softmax", "layer": "fc7"}
#: The frozen arm when its recipe is chosen on validation (:mod:`zfbook.transfer.choose`):
#: C by cross-validation on the training shots (:func:`zfbook.probes.probe_cv`), and a
#: ``view``: the centre crop, or each training image's 10 crops (augmented features: Razavian
#: et al. 2014 add jittered copies of the training images to their linear SVM's training set);
#: test images are always read on the centre crop, as the other arms read them.
FROZEN_CV = {**FROZEN, "view": "center", "Cs": list(CS), "folds": MAX_FOLDS}
#: The finetune arm: all layers from the pretrained weights at ``lr`` (the new fc8 at
#: ``head_lr``), the same epochs, batch, augmentation and schedule as :data:`SCRATCH`.
FINETUNE = {"epochs": 10, "batch_size": 16, "lr": 0.001, "head_lr": 0.01, "anneal": (8,),
            "epoch_images": 600}


# ------------------------------------------------------------------ the arms
def run_seed(seed: int, draw: int, shots: int) -> int:
    """The training seed of one scratch/finetune run: distinct for every (seed, draw, shots)."""
    return seed * 1_000_000 + draw * 1000 + shots


@dataclass
class _Images:
    """What the trainer takes as a dataset: ``.images`` uint8, ``.labels``, ``.classes``."""
    images: torch.Tensor
    labels: torch.Tensor
    classes: list

    def __len__(self):
        return len(self.labels)


def _repeats(n: int, epoch_images: int) -> int:
    """How many copies of ``n`` training images fill an epoch of at least ``epoch_images``."""
    return max(1, math.ceil(epoch_images / n))


def _repeat(images, labels, epoch_images: int):
    r = _repeats(len(labels), epoch_images)
    return images.repeat(r, 1, 1, 1), labels.repeat(r)


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 200, device="cpu") -> np.ndarray:
    """Centre-crop predictions (class indices) of a model with ``.preprocess``."""
    model.eval().to(device)
    out = [model(model.preprocess.center(images[i:i + batch_size].to(device))).argmax(1).cpu()
           for i in range(0, len(images), batch_size)]
    return torch.cat(out).numpy().astype(np.int64)


def frozen_arm(train_features, train_labels, test_features, test_labels, seed: int = 0):
    """Layers 1–7 frozen, a new softmax on top: :func:`zfbook.probes.probe` ``softmax`` on fc7."""
    return probe("softmax", train_features, train_labels, test_features, test_labels, seed)


def frozen_cv_arm(train_features, train_labels, test_features, test_labels, seed: int = 0, *,
                  recipe: dict = FROZEN_CV, groups=None, held_out=None):
    """The frozen arm of a recipe with ``Cs`` (C by cross-validation, folds over images:
    ``groups``, ``held_out`` as :func:`zfbook.probes.probe_cv`) or a fixed ``C`` (default 1):
    a :class:`zfbook.probes.CVProbeResult` or :class:`zfbook.probes.ProbeResult`."""
    name = recipe.get("classifier", "softmax")
    if "Cs" in recipe:
        return probe_cv(name, train_features, train_labels, test_features, test_labels, seed, groups=groups,
                        held_out=held_out, Cs=recipe["Cs"], max_folds=recipe.get("folds", MAX_FOLDS))
    return probe(name, train_features, train_labels, test_features, test_labels, seed, C=recipe.get("C", 1.0))


def scratch_schedule(recipe: dict, n_train: int) -> tuple[int, tuple[int, ...]]:
    """``(epochs, anneal epochs)`` of a scratch run on ``n_train`` images: the recipe's own
    ``epochs`` and ``anneal`` if it names them, else ``passes`` over the images in epochs of
    ``epoch_images`` (at least ``min_epochs``), ×0.1 after ``anneal_at`` of them."""
    if "epochs" in recipe:
        return int(recipe["epochs"]), tuple(recipe["anneal"])
    per_epoch = n_train * _repeats(n_train, recipe["epoch_images"])
    epochs = max(recipe["min_epochs"], math.ceil(recipe["passes"] * n_train / per_epoch))
    return epochs, ((max(1, round(recipe["anneal_at"] * epochs)),) if epochs > 1 else ())


def scratch_arm(preset: str, images, labels, classes, test_images, *, seed: int, recipe: dict = SCRATCH,
                device="cpu") -> tuple[np.ndarray, float]:
    """Train ``preset`` from random weights on the training images with :func:`zfbook.train.train`
    (``recipe``: :data:`SCRATCH`), in a temporary folder; ``(test predictions, final train loss)``."""
    from ..checkpoint import load_checkpoint, model_from_checkpoint
    from ..train import Config, train
    rep_x, rep_y = _repeat(images, labels, recipe["epoch_images"])
    # the trainer's per-epoch validation only logs here (no plateau schedule): one image per class
    first = torch.as_tensor(np.unique(labels.numpy(), return_index=True)[1])
    epochs, anneal = scratch_schedule(recipe, len(labels))
    cfg = Config(preset=preset, epochs=epochs, batch_size=recipe["batch_size"], lr=recipe["lr"],
                 anneal=anneal, patience=10 ** 9, seed=seed, snapshots=(),
                 device=str(device), command="zfbook.transfer.scratch_arm")
    with tempfile.TemporaryDirectory(prefix="zfbook-scratch-") as tmp:
        history = train(cfg, tmp, progress=False,
                        data=(_Images(rep_x, rep_y, list(classes)), _Images(images[first], labels[first], list(classes))))
        model = model_from_checkpoint(load_checkpoint(Path(tmp) / "last.pt"))
    return predict(model, test_images, device=device), float(history[-1]["train_loss"])


def finetune_arm(pretrained: nn.Module, images, labels, num_classes: int, test_images, *, seed: int,
                 recipe: dict = FINETUNE, device="cpu") -> tuple[np.ndarray, float]:
    """Every layer trained from ``pretrained`` with a new fc8 (N(0, 0.01²), as Section 3's
    init), SGD (momentum 0.9, weight decay 5e-4) at ``recipe["lr"]`` (fc8 at ``head_lr``),
    random crops and flips, dropout, filter renormalisation, ×0.1 after the ``anneal``
    epochs. The pretrained model is not changed. ``(test predictions, final train loss)``."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = copy.deepcopy(pretrained).to(device)
    old = model.classifier.fc8
    head = nn.Linear(old.in_features, num_classes)
    nn.init.normal_(head.weight, 0.0, 0.01)
    nn.init.zeros_(head.bias)
    model.classifier.fc8 = head.to(device)
    model.num_classes = num_classes
    body = [p for n, p in model.named_parameters() if not n.startswith("classifier.fc8.")]
    opt = torch.optim.SGD([{"params": body, "lr": recipe["lr"]},
                           {"params": head.parameters(), "lr": recipe["head_lr"]}],
                          momentum=0.9, weight_decay=5e-4)
    prep = model.preprocess
    rep_x, rep_y = _repeat(images, labels, recipe["epoch_images"])
    bs = recipe["batch_size"]
    loss_sum = 0.0
    for epoch in range(1, recipe["epochs"] + 1):
        model.train()
        order = torch.randperm(len(rep_y), generator=gen)
        loss_sum = 0.0
        for i in range(0, len(order), bs):
            idx = order[i:i + bs]
            x = prep.random(rep_x[idx].to(device), gen)
            loss = F.cross_entropy(model(x), rep_y[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            models.renormalize_filters(model)
            loss_sum += loss.item() * len(idx)
        if not math.isfinite(loss_sum):
            raise RuntimeError(f"finetuning diverged (loss {loss_sum}) in epoch {epoch}; lower the learning rate")
        if epoch in recipe["anneal"]:
            for g in opt.param_groups:
                g["lr"] *= 0.1
    return predict(model, test_images, device=device), loss_sum / len(rep_y)
