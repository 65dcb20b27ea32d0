"""A full zfnet-mini run on a style of the parts world, then its first-step numbers:
``python drafts/world_run.py NAME LEAVES_LO LEAVES_HI LOOSE_LO LOOSE_HI OCCLUDED EPOCHS ANNEAL``.
Resumable (runs/world-NAME); prints test top-1/top-5 (centre crop), the Gabor share of
conv1 and the time of the training epochs. Not part of the book."""
import sys, time, json
from pathlib import Path
import numpy as np
from zfbook import train, gabor
from zfbook.checkpoint import load_checkpoint, model_from_checkpoint
from zfbook.data import world
from zfbook.data.embedded import embedded

name = sys.argv[1]
a = [int(x) for x in sys.argv[2:6]]
world.STYLE.update(leaves=(a[0], a[1]), loose=(a[2], a[3]), occluded=float(sys.argv[6]))
world.VERSION = f"3{name}"
epochs, anneal = int(sys.argv[7]), tuple(int(x) for x in sys.argv[8].split(","))
out = Path(f"runs/world-{name}")
t = time.time()
tr, va = embedded("train", "parts", 0), embedded("val", "parts", 0)
print(f"{name}: data in {time.time() - t:.0f} s", flush=True)
cfg = train.Config(preset="zfnet-mini", epochs=epochs, anneal=anneal, seed=0, device="cpu",
                   snapshots=(1, 2, 3, 5, 9))
hist = train.train(cfg, out, resume=(out / "last.pt").exists(), data=(tr, va), progress=False)
for h in hist:
    print(h["epoch"], round(h["train_top1"], 1), round(h["val_top1"], 1), round(h["seconds"]), flush=True)
model = model_from_checkpoint(load_checkpoint(out / "last.pt"))
te = embedded("test", "parts", 0)
res = train.evaluate(model, te.images, te.labels, model.preprocess)
r2 = gabor.layer_r2(model)
print(json.dumps({"style": name, "test_top1": round(res["top1"], 2), "test_top5": round(res["top5"], 2),
                  "gabor_share": float((r2 >= 0.85).mean()), "gabor_median": round(float(np.median(r2)), 3),
                  "train_seconds": round(sum(h["seconds"] for h in hist)),
                  "median_epoch_s": float(np.median([h["seconds"] for h in hist]))}), flush=True)
