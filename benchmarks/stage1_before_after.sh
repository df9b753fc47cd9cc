#!/usr/bin/env bash
# Stage-1 training step time of two versions, measured back to back on this machine:
#   bash benchmarks/stage1_before_after.sh BEFORE_REV [AFTER_REV] [VARIANTS] [STEPS]
# Runs `vasa bench train --stage 1 --variant V --batch_sizes 8` for each variant (default
# "tiny small") at BEFORE_REV and AFTER_REV (default: the work tree), each from a temporary git
# worktree with this checkout's .venv, and prints the two tables one after the other. The step is
# the full recipe (every loss on, the packaged VGG16 and dlib networks included), at the
# experiment's bf16 compute.
set -euo pipefail
before=${1:?give the revision to compare with, e.g. HEAD~1}
after=${2:-}
variants=${3:-tiny small}
steps=${4:-5}
root=$(git rev-parse --show-toplevel)
python="$root/.venv/bin/python"
out=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$out/before" >/dev/null 2>&1 || true;
      [ -n "$after" ] && git -C "$root" worktree remove --force "$out/after" >/dev/null 2>&1 || true' EXIT
git -C "$root" worktree add --detach "$out/before" "$before" >/dev/null
after_tree="$root"
if [ -n "$after" ]; then
  git -C "$root" worktree add --detach "$out/after" "$after" >/dev/null
  after_tree="$out/after"
fi
for variant in $variants; do
  for side in before after; do
    tree=$([ "$side" = before ] && echo "$out/before" || echo "$after_tree")
    echo "## $side ($(git -C "$tree" rev-parse --short HEAD)$([ "$tree" = "$root" ] && echo ' + work tree')), $variant"
    (cd "$tree" && PYTHONPATH="$tree" "$python" -m vasa_jax.main bench train --stage 1 \
        --variant "$variant" --batch_sizes 8 --steps "$steps" \
        --json "$out/$side-$variant.json" 2>/dev/null | grep '^|')
  done
done
