#!/usr/bin/env bash
# The re-make on the parts world (issue 23), one command per record, in order; each resumes
# when started again (run this script again). Logs: runs/remake/<name>.log. Not part of the
# book until the switch.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
step() { local name=$1; shift; echo "== $(date -u +%FT%TZ) $name: $*" >> runs/remake/$name.log
         "$@" >> runs/remake/$name.log 2>&1; echo "== $(date -u +%FT%TZ) $name: done" >> runs/remake/$name.log; }
mkdir -p runs/remake
# Table 2 / the architecture chapter; zfnet-mini seed 0 (with its snapshots) is also the shipped zfnet-mini
step architecture $PY -m zfbook compare --presets zfnet-mini,alexnet-mini --seeds 0,1,2 --dataset parts \
    --snapshots 1,2,3,4,6,9,13,18,25 --out runs/remake/architecture --no-progress
# the sanity chapter's data-randomisation network (Adebayo et al. 2018, Section 4)
step shuffled-labels $PY -m zfbook train --preset zfnet-mini --dataset parts --labels shuffled --snapshots "" \
    --out runs/remake/shuffled-labels --no-progress --resume
# Table 3; its baseline runs are the architecture set's zfnet-mini runs (the same config, so the
# same bits): linked, evaluated, not trained twice (each record's trained_by names compare)
mkdir -p runs/remake/ablation
for s in 0 1 2; do [ -e runs/remake/ablation/zfnet-mini-seed$s ] || ln -s ../architecture/zfnet-mini-seed$s runs/remake/ablation/zfnet-mini-seed$s; done
step ablation $PY -m zfbook ablate --preset zfnet-mini --seeds 0,1,2 --dataset parts \
    --out runs/remake/ablation --no-progress
