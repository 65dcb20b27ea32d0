#!/usr/bin/env bash
# The sanity chapter's data-randomisation network (Adebayo et al. 2018, Section 4; Zhang et
# al. 2017's random labels), from a work tree pinned at a commit of main that has `train
# --train-per-class/--dropout/--no-augment` (../remake-s). 2,400 training images (100 per
# class), no dropout, weight decay or augmentation, the rate x0.1 after epochs 50 and 65:
# the schedule chosen on the training top-1 alone (it must memorise; Adebayo et al. train
# past 95%). Resumes when run again; log runs/remake/shuffled-labels.log.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p runs/remake
cmd=(.venv/bin/python -m zfbook train --preset zfnet-mini --dataset parts --labels shuffled --train-per-class 100
     --dropout 0 --weight-decay 0 --conv1-weight-decay 0 --no-augment --epochs 80 --anneal 50,65 --snapshots ""
     --out runs/remake/shuffled-labels --no-progress)
[ -e runs/remake/shuffled-labels/last.pt ] && cmd+=(--resume)
echo "== $(date -u +%FT%TZ) shuffled-labels: ${cmd[*]}" >> runs/remake/shuffled-labels.log
"${cmd[@]}" >> runs/remake/shuffled-labels.log 2>&1
echo "== $(date -u +%FT%TZ) shuffled-labels: done" >> runs/remake/shuffled-labels.log
