#!/usr/bin/env bash
# Ship the re-made ablation from the branch tree (run once runs/remake/ablation.log says done).
# usage: ship.sh "NOTE"
set -euo pipefail
cd /work/switch
A=/work/remake-main/runs/remake
# the linked baselines must be the architecture runs, evaluated, not retrained:
.venv/bin/python - <<'PY'
import json
a = {(r["name"], r["seed"]): r for r in json.load(open("data/results/architecture.json"))["records"]}
recs = json.load(open("/work/remake-main/runs/remake/ablation/results.json"))["records"]
cheap = [r for r in recs if r["epochs"] == 1 and r["name"].endswith("epochs1")]
recs = [r for r in recs if r not in cheap]
assert len(cheap) == 1, [r["name"] for r in cheap]
b = [r for r in recs if r["variant"] == "baseline"]
assert len(b) == 3 and len(recs) == 27, (len(b), len(recs))
for r in b:
    x = a[(r["name"], r["seed"])]
    for k in ("weights_sha256", "test_top1_centre", "test_top1_10crop", "test_top5_centre", "epochs", "history"):
        assert r[k] == x[k], (r["seed"], k)
    assert r["trained_by"] == x["command"] or r["trained_by"] == x.get("trained_by"), (r["trained_by"], x["command"])
print("baselines = architecture runs: OK")
for r in recs:
    print(r["name"], r["seed"], r["epochs"], r["stopped_at_plateau"], round(r["test_error_top1_centre"], 2), r["code_revision"][:7], r["threads"])
PY
.venv/bin/python tools/ship_results.py $A/ablation/results.json ablation --note "$1"
