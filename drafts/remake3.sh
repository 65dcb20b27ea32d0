#!/usr/bin/env bash
# The re-make's last step (issue 23): the ablation, Table 3, from this tree (main), resumable.
# The baselines are the architecture set's zfnet-mini runs (linked, evaluated, not retrained).
# Log: runs/remake/ablation.log. Run it again after an interruption: it continues each run
# from its last epoch.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p runs/remake/ablation
for s in 0 1 2; do
  [ -e runs/remake/ablation/zfnet-mini-seed$s ] || ln -s ../architecture/zfnet-mini-seed$s runs/remake/ablation/zfnet-mini-seed$s
done
echo "== $(date -u +%FT%TZ) ablation: python -m zfbook ablate --preset zfnet-mini --seeds 0,1,2 --dataset parts --jobs 2 --out runs/remake/ablation --no-progress" >> runs/remake/ablation.log
OMP_NUM_THREADS=2 .venv/bin/python -m zfbook ablate --preset zfnet-mini --seeds 0,1,2 --dataset parts \
    --jobs 2 --out runs/remake/ablation --no-progress >> runs/remake/ablation.log 2>&1
echo "== $(date -u +%FT%TZ) ablation: done" >> runs/remake/ablation.log
