"""Pilot of a conv1-only change to the recipe, on the parts world's validation split and the
Gabor share: ``python drafts/world_conv1.py NAME EPOCHS ANNEAL WD_MULT LR_MULT`` trains
zfnet-mini (seed 0) with conv1's weight decay and learning rate multiplied by WD_MULT and
LR_MULT (the rest of the recipe unchanged; ANNEAL "-" for none), snapshots at 1 2 3 5 9,
and prints the Gabor share of every snapshot and the last epoch, with validation top-1.
Resumable (runs/world-NAME). Not part of the book."""
import json, sys, time
from pathlib import Path
import numpy as np
import torch
from zfbook import train, gabor
from zfbook.checkpoint import load_checkpoint, model_from_checkpoint
from zfbook.data.embedded import embedded

name, epochs, anneal = sys.argv[1], int(sys.argv[2]), sys.argv[3]
anneal = () if anneal == "-" else tuple(int(x) for x in anneal.split(","))
wd_mult, lr_mult = float(sys.argv[4]), float(sys.argv[5])
_SGD = torch.optim.SGD


class SGD(_SGD):
    def __init__(self, params, lr, momentum, weight_decay):
        params = list(params)
        first = params[:2]   # conv1's weight and bias (the model's first parameters)
        groups = [{"params": first, "lr": lr * lr_mult, "weight_decay": weight_decay * wd_mult, "mult": lr_mult},
                  {"params": params[2:], "mult": 1.0}]
        super().__init__(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)


torch.optim.SGD = SGD
out = Path(f"runs/world-{name}")
tr, va = embedded("train", "parts", 0), embedded("val", "parts", 0)
cfg = train.Config(preset="zfnet-mini", epochs=epochs, anneal=anneal, seed=0, device="cpu",
                   snapshots=(1, 2, 3, 5, 9))
hist = train.train(cfg, out, resume=(out / "last.pt").exists(), data=(tr, va), progress=False)
rows = []
for f in sorted((out / "snapshots").glob("epoch*.pt"), key=lambda p: int(p.stem[5:])) + [out / "last.pt"]:
    r2 = gabor.layer_r2(model_from_checkpoint(load_checkpoint(f)))
    rows.append({"file": f.name, "share": round(float((r2 >= 0.85).mean()), 3), "median": round(float(np.median(r2)), 3)})
print(json.dumps({"name": name, "wd_mult": wd_mult, "lr_mult": lr_mult, "epochs": epochs, "anneal": anneal,
                  "val_top1": [round(h["val_top1"], 1) for h in hist], "epoch_s": [round(h["seconds"]) for h in hist],
                  "gabor": rows}), flush=True)
