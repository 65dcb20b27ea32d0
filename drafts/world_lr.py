"""Quick learning-rate probe on the parts world (validation split only): ``python
drafts/world_lr.py LR STEPS [WORLD_FAMILY]`` trains zfnet-mini for STEPS steps and prints
the validation top-1. Not part of the book."""
import sys, time, json, tempfile
import torch
from zfbook import train
from zfbook.data.embedded import embedded

lr, steps = float(sys.argv[1]), int(sys.argv[2])
fam = sys.argv[3] if len(sys.argv) > 3 else "parts"
tr, va = embedded("train", fam, 0), embedded("val", fam, 0)
cfg = train.Config(preset="zfnet-mini", epochs=2, lr=lr, anneal=(), seed=0, device="cpu", snapshots=())
t = time.time()
with tempfile.TemporaryDirectory() as d:
    hist = train.train(cfg, d, data=(tr, va), progress=False)
print(json.dumps({"lr": lr, "val_top1": [round(h["val_top1"], 1) for h in hist],
                  "train_top1": [round(h["train_top1"], 1) for h in hist], "s": round(time.time() - t)}), flush=True)
