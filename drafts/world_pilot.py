"""The parts world's first run: zfnet-mini, the candidate default recipe, on family 'parts'.
Writes runs/world-pilot (resumable: run again to continue). Not part of the book."""
import sys, time, json
from pathlib import Path
import torch
from zfbook import train
from zfbook.data.embedded import embedded

out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/world-pilot")
epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 18
anneal = tuple(int(a) for a in sys.argv[3].split(",")) if len(sys.argv) > 3 else (14,)
t = time.time()
tr, va = embedded("train", "parts", 0), embedded("val", "parts", 0)
print(f"data ready in {time.time()-t:.0f} s: {len(tr)} train, {len(va)} val", flush=True)
cfg = train.Config(preset="zfnet-mini", epochs=epochs, anneal=anneal, seed=0, device="cpu")
hist = train.train(cfg, out, resume=(out / "last.pt").exists(), data=(tr, va), progress=False)
print(json.dumps(hist[-1]), flush=True)
