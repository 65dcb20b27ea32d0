"""Quick probe of a world style on the validation split: ``python drafts/world_probe.py NAME
LEAVES_LO LEAVES_HI LOOSE_LO LOOSE_HI OCCLUDED [EPOCHS]`` renders the parts family with that
style (its own cache name) and trains zfnet-mini for EPOCHS (2) epochs. Not part of the book."""
import sys, time, json, tempfile
from zfbook import train
from zfbook.data import world
from zfbook.data.embedded import embedded

name = sys.argv[1]
a = [int(x) for x in sys.argv[2:6]]
world.STYLE.update(leaves=(a[0], a[1]), loose=(a[2], a[3]), occluded=float(sys.argv[6]))
world.VERSION = f"3{name}"
epochs = int(sys.argv[7]) if len(sys.argv) > 7 else 2
t = time.time()
tr, va = embedded("train", "parts", 0), embedded("val", "parts", 0)
print(f"{name}: data in {time.time() - t:.0f} s", flush=True)
cfg = train.Config(preset="zfnet-mini", epochs=epochs, anneal=(), seed=0, device="cpu", snapshots=())
with tempfile.TemporaryDirectory() as d:
    hist = train.train(cfg, d, data=(tr, va), progress=False)
print(json.dumps({"style": name, "val_top1": [round(h["val_top1"], 1) for h in hist],
                  "train_top1": [round(h["train_top1"], 1) for h in hist],
                  "epoch_s": [round(h["seconds"]) for h in hist]}), flush=True)
