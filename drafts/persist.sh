#!/usr/bin/env bash
# Saves into drafts/state/ (committed on main) what a later session needs if its checkout
# comes with main alone, as the sixth session's of 2026-12-07 did (the branch `switch` and
# runs/ were lost): an incremental git bundle of each work branch named in BRANCHES, and a
# tar of the re-make's run files changed since the last save (per-epoch snapshots only for
# the runs whose snapshots ship: architecture/zfnet-mini-seed0). drafts/restore.sh undoes it.
# Run from main's tree; commits nothing itself. The run files are tens of MB a save (each
# run's last.pt): save them once, at a session's end; RUNS=0 saves the branches alone.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=$PWD/drafts/state
BRANCHES=${BRANCHES:-switch}
mkdir -p $STATE
stamp=$(date -u +%Y%m%dT%H%M%SZ)
for b in $BRANCHES; do
  git rev-parse -q --verify "refs/heads/$b" > /dev/null || continue
  tip=$(git rev-parse "$b")
  base=$(cat "$STATE/$b.tip" 2>/dev/null || git merge-base main "$b")
  if [ "$base" != "$tip" ]; then
    # ^main: what main holds (drafts/state itself, merged into the branch) stays out of the bundle
    git bundle create "$STATE/$b-$stamp.bundle" "$base..$b" ^main
    echo "$tip" > "$STATE/$b.tip"
  fi
done
[ "${RUNS:-1}" = 0 ] && { ls -la $STATE; exit 0; }   # RUNS=0: the branches only (cheap, any time)
since=()
[ -e "$STATE/runs.stamp" ] && since=(-newer "$STATE/runs.stamp")
touch "$STATE/runs.stamp.new"
save() {  # save TREE NAME: TREE's runs/remake files into $STATE/NAME-$stamp.tgz, relative to TREE
  local tree=$1 name=$2 list
  [ -d "$tree/runs/remake" ] || return 0
  list=$(mktemp)
  (cd "$tree" && find -L runs/remake -type f "${since[@]}" ! -name '.zfbook.lock' ! -name '*.tmp*' \
       \( ! -path '*/snapshots/*' -o -path '*architecture/zfnet-mini-seed0/snapshots/*' \) \
       ! -path '*/ablation/zfnet-mini-seed*') > "$list"
  # in parts of at most 45 MB (a Git host refuses files over 100 MB)
  [ -s "$list" ] && tar -czf - -C "$tree" -T "$list" | split -b 45m -d - "$STATE/$name-$stamp.tgz.part-"
  rm -f "$list"
}
# the re-make runs from work trees pinned at one commit each (main moves on): ../remake-main
# (drafts/remake4.sh), ../remake-tree (its transfer and probes), ../remake-s (the shuffled network)
for pair in remake-main:runs remake-tree:tree-runs remake-s:s-runs; do
  tree=../${pair%%:*}
  [ -d "$tree" ] || continue
  save "$tree" "${pair#*:}"
  git -C "$tree" rev-parse HEAD > "$STATE/${pair%%:*}.commit"
done
mv "$STATE/runs.stamp.new" "$STATE/runs.stamp"
ls -la $STATE; du -sh $STATE
