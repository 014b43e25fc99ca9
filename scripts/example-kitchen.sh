#!/usr/bin/env bash
# Makes examples/kitchen's git source: a bare repository .repos/base.git holding the cookbook in
# repos/base at three tagged versions (v1.0.0, v1.1.0, v2.0.0), as a team's cookbook repository
# would. Dates and author are fixed, so the commits are the same on every machine.
# Usage: scripts/example-kitchen.sh [KITCHEN]   (default: examples/kitchen)
set -euo pipefail
kitchen="$(cd "${1:-"$(dirname "$0")/../examples/kitchen"}" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export GIT_AUTHOR_NAME=Galley GIT_AUTHOR_EMAIL=galley@example.invalid
export GIT_COMMITTER_NAME=Galley GIT_COMMITTER_EMAIL=galley@example.invalid
git init -q -b main "$work/base"
commit() { # version, message
  rm -rf "$work/base/"*
  cp -R "$kitchen/repos/base/." "$work/base/"
  sed -i "s/^version: .*/version: $1/" "$work/base/cookbook.yaml"
  if [ "$1" = 2.0.0 ]; then
    # 2.0.0 renames an attribute: a breaking change that the kitchen's ^1.0 keeps out
    sed -i 's/^  motd:/  message:/' "$work/base/attributes/default.yaml"
    sed -i 's/r.attrs.base.motd/r.attrs.base.message/' "$work/base/recipes/default.ts"
  fi
  export GIT_AUTHOR_DATE="2026-01-0${2}T12:00:00Z" GIT_COMMITTER_DATE="2026-01-0${2}T12:00:00Z"
  git -C "$work/base" add -A
  git -C "$work/base" commit -q -m "base $1"
  git -C "$work/base" tag "v$1"
}
commit 1.0.0 1
commit 1.1.0 2
commit 2.0.0 3
rm -rf "$kitchen/.repos/base.git"
mkdir -p "$kitchen/.repos"
git clone -q --bare "$work/base" "$kitchen/.repos/base.git"
echo "made $kitchen/.repos/base.git (tags: $(git -C "$kitchen/.repos/base.git" tag | tr '\n' ' '))"
