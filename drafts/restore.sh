#!/usr/bin/env bash
# Undoes drafts/persist.sh in a fresh checkout of main: fetches the bundles, in order, into
# their branches and unpacks the run files into ../remake-main (the pinned tree the re-make runs from) and
# ../remake-tree.
# Exports into ../remake-tree/data/ are not saved: they are the branch switch's data/ (below).
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=drafts/state
for f in $(ls $STATE/*.bundle 2>/dev/null | sort); do
  b=$(basename "$f" | sed 's/-[0-9TZ]*\.bundle$//')
  git fetch -q "$f" "+refs/heads/$b:refs/heads/$b"
  echo "fetched $f into $b ($(git rev-parse --short $b))"
done
for pair in remake-main:runs remake-tree:tree-runs remake-s:s-runs; do
  name=${pair%%:*} tar=${pair#*:}
  ls $STATE/$tar-*.tgz.part-* > /dev/null 2>&1 || continue
  [ -d ../$name ] || git worktree add --detach ../$name "$(cat $STATE/$name.commit)"
  [ -e ../$name/.venv ] || ln -s "$PWD/.venv" ../$name/.venv
  for f in $(ls $STATE/$tar-*.tgz.part-00 | sort); do
    cat "${f%.part-00}".part-* | tar -xzf - -C ../$name && echo "unpacked ${f%.part-00}"
  done
done
# ../remake-tree's data/ held the exports (drafts/remake2.sh marks them runs/remake/exported);
# they are the branch switch's data/ files (same sha256), so take them from there
if [ -e ../remake-tree/runs/remake/exported ] && git rev-parse -q --verify refs/heads/switch > /dev/null; then
  git archive switch data | tar -x -C ../remake-tree
  # every file as its manifest entry says (the exports' sha256 were checked on the branch)
  python3 -c 'import hashlib, json, sys; d = sys.argv[1]; m = json.load(open(d + "/MANIFEST.json"))
bad = [f for f, e in m.items() if hashlib.sha256(open(f"{d}/{f}", "rb").read()).hexdigest() != e["sha256"]]
sys.exit(f"remake-tree/data differs from its manifest: {bad}" if bad else 0)' ../remake-tree/data
  echo "remake-tree/data from the branch switch"
fi
# the ablation's baselines are links to the architecture runs
mkdir -p ../remake-main/runs/remake/ablation
for s in 0 1 2; do [ -e ../remake-main/runs/remake/ablation/zfnet-mini-seed$s ] || ln -s ../architecture/zfnet-mini-seed$s ../remake-main/runs/remake/ablation/zfnet-mini-seed$s; done
echo "then: cd ../remake-main && nohup drafts/remake4.sh > runs/remake4.out 2>&1 &"
echo "and, unless its log says done: cd ../remake-s && nohup drafts/remake_shuffled.sh > /dev/null 2>&1 &"
