#!/usr/bin/env bash
# issue 10 (transfer): the shipped records data/results/transfer.json and probes.json.
# Probes on both families (7 layers x svm/softmax x 8 shots x 5 draws), then the three arms
# (frozen: 5 draws; finetune and scratch: 3 draws) over shots 1,2,3,5,10,20,30,60.
set -e
OUT=/work/runs/out/transfer
mkdir -p $OUT
echo "code revision $(git rev-parse HEAD)"; git status --short zfbook/ | head -20
SHOTS=1,2,3,5,10,20,30,60
T="/usr/bin/time -f %e -a -o $OUT/wall.txt"
echo probes-transfer >> $OUT/wall.txt
$T .venv/bin/python -m zfbook probe --checkpoint zfnet-mini --dataset embedded-transfer \
  --layers conv1,conv2,conv3,conv4,conv5,fc6,fc7 --classifiers svm,softmax --shots $SHOTS --draws 5 \
  --out $OUT/probes-transfer --no-progress
echo probes-main >> $OUT/wall.txt
$T .venv/bin/python -m zfbook probe --checkpoint zfnet-mini --dataset embedded-main \
  --layers conv1,conv2,conv3,conv4,conv5,fc6,fc7 --classifiers svm,softmax --shots $SHOTS --draws 5 \
  --out $OUT/probes-main --no-progress
echo transfer >> $OUT/wall.txt
$T .venv/bin/python -m zfbook transfer --checkpoint zfnet-mini --dataset embedded-transfer \
  --arms frozen,finetune,scratch --shots $SHOTS --draws 5 --train-draws 3 \
  --out $OUT/arms --no-progress
cat $OUT/wall.txt
# ship: data/results/{transfer,probes}.json and their data/MANIFEST.json entries (read-modify-write, atomic)
REV="$(git rev-parse HEAD)$(git diff --quiet HEAD -- zfbook/ || echo +dirty)"
.venv/bin/python - "$OUT" "$REV" <<'PY'
import hashlib, json, os, sys
from pathlib import Path
out, rev = Path(sys.argv[1]), sys.argv[2]
walls = (out / "wall.txt").read_text().split()
wall = {walls[i]: float(walls[i + 1]) for i in range(0, len(walls) - 1, 2)}
def write(path, records):
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("[\n" + ",\n".join(json.dumps(r, separators=(",", ":")) for r in records) + "\n]\n")
    os.replace(tmp, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()
res = Path("data/results"); res.mkdir(parents=True, exist_ok=True)
arms = json.loads((out / "arms" / "results.json").read_text())
probes = (json.loads((out / "probes-transfer" / "results.json").read_text())
          + json.loads((out / "probes-main" / "results.json").read_text()))
entries = {
  "results/transfer.json": dict(command=[arms[0]["command"]], seed=0, code_revision=rev,
      wall_seconds=wall["transfer"], sha256=write(res / "transfer.json", arms), records=len(arms),
      note="frozen arm 5 draws, finetune and scratch 3 draws; wall time of the whole command on the shared 2-core CPU (other jobs and tests were running)"),
  "results/probes.json": dict(command=sorted({p["command"] for p in probes}), seed=0, code_revision=rev,
      wall_seconds=round(wall["probes-transfer"] + wall["probes-main"], 2),
      sha256=write(res / "probes.json", probes), records=len(probes),
      note="both commands, features computed once and cached; wall time on the shared 2-core CPU"),
}
m = Path("data/MANIFEST.json")
manifest = json.loads(m.read_text())
manifest.update(entries)
tmp = m.with_name(".MANIFEST.json.tmp")
tmp.write_text(json.dumps(dict(sorted(manifest.items())), indent=2) + "\n")
os.replace(tmp, m)
print(json.dumps(entries, indent=1))
PY
