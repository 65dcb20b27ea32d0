#!/usr/bin/env bash
# The whole re-make again (issue 23), after the sixth session's checkout came without the
# branch `switch` and without runs/ (both lost): the architecture set (drafts/remake.sh's
# first step), then drafts/remake2.sh (exports into ../remake-tree, transfer and probes
# there, then the ablation here). Each step resumes when started again; logs in
# runs/remake/*.log. drafts/persist.sh saves what a later session needs into drafts/state/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
# one thread a process: two-thread runs stall when tests or chapters share the cores
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p runs/remake
if ! grep -q "alexnet-mini-seed2: test top-1" runs/remake/architecture.log 2>/dev/null; then
  echo "== $(date -u +%FT%TZ) architecture: compare" >> runs/remake/architecture.log
  $PY -m zfbook compare --presets zfnet-mini,alexnet-mini --seeds 0,1,2 --dataset parts --jobs 2 \
      --snapshots 1,2,3,4,6,9,13,18,25 --out runs/remake/architecture --no-progress >> runs/remake/architecture.log 2>&1
  echo "== $(date -u +%FT%TZ) architecture: done" >> runs/remake/architecture.log
fi
[ -d ../remake-tree ] || git worktree add --detach ../remake-tree HEAD
bash drafts/remake2.sh
