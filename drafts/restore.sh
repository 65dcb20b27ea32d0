#!/usr/bin/env bash
# Undoes drafts/persist.sh in a fresh checkout of main: fetches the bundles, in order, into
# their branches and unpacks the run files into ../remake-main (the pinned tree the re-make runs from) and
# ../remake-tree.
# Exports into ../remake-tree/data/ are not saved: drafts/remake2.sh makes them again.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=drafts/state
for f in $(ls $STATE/*.bundle 2>/dev/null | sort); do
  b=$(basename "$f" | sed 's/-[0-9TZ]*\.bundle$//')
  git fetch -q "$f" "+refs/heads/$b:refs/heads/$b"
  echo "fetched $f into $b ($(git rev-parse --short $b))"
done
[ -d ../remake-main ] || git worktree add --detach ../remake-main "$(cat $STATE/remake-main.commit 2>/dev/null || echo HEAD)"
[ -e ../remake-main/.venv ] || ln -s "$PWD/.venv" ../remake-main/.venv
for f in $(ls $STATE/runs-*.tgz 2>/dev/null | sort); do tar -xzf "$f" -C ../remake-main && echo "unpacked $f"; done
if ls $STATE/tree-runs-*.tgz > /dev/null 2>&1; then
  [ -d ../remake-tree ] || git worktree add --detach ../remake-tree "$(cat $STATE/remake-main.commit 2>/dev/null || echo HEAD)"
  for f in $(ls $STATE/tree-runs-*.tgz | sort); do tar -xzf "$f" -C ../remake-tree && echo "unpacked $f"; done
fi
# the ablation's baselines are links to the architecture runs
mkdir -p ../remake-main/runs/remake/ablation
for s in 0 1 2; do [ -e ../remake-main/runs/remake/ablation/zfnet-mini-seed$s ] || ln -s ../architecture/zfnet-mini-seed$s ../remake-main/runs/remake/ablation/zfnet-mini-seed$s; done
echo "then: cd ../remake-main && nohup drafts/remake4.sh > runs/remake4.out 2>&1 &"
