#!/usr/bin/env bash
# Runs `npm run bench` for an older commit and for this tree, alternating
# (old, new, old, new, ...), so both meet the same machine load, and writes
# the figures side by side to bench/COMPARE.md (scripts/bench-compare.mjs).
#
#   bash scripts/bench-compare.sh <old-ref> [rounds=2] [runs-per-round=3]
#
# The old commit is checked out as a detached worktree under $TMPDIR and its
# addon built with the same Cargo target directory (only the changed crates
# recompile). Its bench runs with this tree's node_modules: the packages
# the bench uses (tsx, tweetnacl, protobufjs) must be the same, which the
# script checks. bench/RESULTS.md ends up holding this tree's last round.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
old_ref="${1:?usage: bash scripts/bench-compare.sh <old-ref> [rounds] [runs-per-round]}"
rounds="${2:-2}"
runs="${3:-3}"
old_sha="$(git rev-parse --verify "$old_ref^{commit}")"

for dep in tsx tweetnacl protobufjs; do
  if [ "$(git show "$old_sha:package.json" | node -e "const p=JSON.parse(require('fs').readFileSync(0,'utf8'));console.log((p.dependencies||{})['$dep']||(p.devDependencies||{})['$dep']||'')")" != \
       "$(node -e "const p=require('./package.json');console.log((p.dependencies||{})['$dep']||(p.devDependencies||{})['$dep']||'')")" ]; then
    echo "bench-compare: $old_ref wants another version of $dep than this tree; install its own node_modules first" >&2
    exit 2
  fi
done

work="$(mktemp -d "${TMPDIR:-/tmp}/peersock-bench-XXXXXX")"
old="$work/old"
cleanup() { git -C "$root" worktree remove --force "$old" >/dev/null 2>&1 || true; }
trap cleanup EXIT
git worktree add --detach -q "$old" "$old_sha"
ln -s "$root/node_modules" "$old/node_modules"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
echo "bench-compare: building $old_ref ($old_sha) in $old" >&2
(cd "$old" && npm run build:native >/dev/null)
echo "bench-compare: building this tree" >&2
# Cargo names a workspace member's artifacts by its path relative to the
# workspace, so the old tree's build would pass for this one's when the
# sources here are older: make them newer.
find crates -name '*.rs' -exec touch {} +
npm run build:native >/dev/null

for r in $(seq 1 "$rounds"); do
  for side in old new; do
    dir="$root"; [ "$side" = old ] && dir="$old"
    echo "bench-compare: round $r/$rounds, $side" >&2
    (cd "$dir" && BENCH_RUNS="$runs" npm run bench >/dev/null)
    cp "$dir/bench/RESULTS.md" "$work/$side-$r.md"
  done
done

node scripts/bench-compare.mjs --old "$old_ref ($(git log -1 --format=%h "$old_sha"))" \
  --new "this tree ($(git log -1 --format=%h HEAD)$(git diff --quiet HEAD -- src crates || echo ', modified'))" \
  "$work"/old-*.md -- "$work"/new-*.md > bench/COMPARE.md
echo "bench-compare: wrote bench/COMPARE.md" >&2
cat bench/COMPARE.md
