#!/usr/bin/env bash
# Makes the git repository the webapp stack deploys its app from: a bare repository at DIR
# (default: .galley/app.git beside this script) whose branch main holds the files of app/.
# Idempotent: a second run with app/ unchanged makes no commit. Author, committer and date are
# fixed, so the same app/ gives the same commit id on every machine. The first run also makes the
# kitchen's secret key, .galley/secret.key (below).
#
#   examples/webapp/make-app-repo.sh [DIR]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
app="$here/app"
repo="${1:-$here/.galley/app.git}"

export GIT_AUTHOR_NAME="Galley example" GIT_AUTHOR_EMAIL="example@galley.invalid"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
export GIT_AUTHOR_DATE="2024-01-01T00:00:00Z" GIT_COMMITTER_DATE="2024-01-01T00:00:00Z"
# the machine's or the user's git settings (hooks, signing, templates) must not change the commit
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1

# The kitchen's secret key, for stacks/secrets.yaml: a copy of secret.example.key, a throwaway key
# committed for this demo only (never commit a real key). Private to its owner: Galley, like ssh,
# refuses a key file others may read, and git checks files out readable by all.
if [ ! -e "$here/.galley/secret.key" ]; then
  mkdir -p "$here/.galley"
  install -m 600 "$here/secret.example.key" "$here/.galley/secret.key"
fi

if [ ! -d "$repo" ]; then
  mkdir -p "$(dirname "$repo")"
  # made beside its final place and renamed: an interrupted run leaves no half-made repository
  temp="$(mktemp -d "$repo.XXXXXX")"
  trap 'rm -rf "$temp"' EXIT
  git init -q --bare -b main "$temp"
  mv "$temp" "$repo"
  trap - EXIT
fi

git_repo() { git --git-dir="$repo" "$@"; }

# stage app/ in a private index, so nothing of the repository's own state is touched
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
index="$scratch/index"
GIT_INDEX_FILE="$index" git_repo --work-tree="$app" add --all .
tree="$(GIT_INDEX_FILE="$index" git_repo write-tree)"

parent="$(git_repo rev-parse -q --verify refs/heads/main || true)"
if [ -n "$parent" ] && [ "$(git_repo rev-parse "$parent^{tree}")" = "$tree" ]; then
  echo "$repo: main is already at $(git_repo rev-parse --short "$parent") (app/ unchanged)"
  exit 0
fi

message="hello app"
if [ -n "$parent" ]; then
  commit="$(git_repo commit-tree "$tree" -p "$parent" -m "$message")"
else
  commit="$(git_repo commit-tree "$tree" -m "$message")"
fi
# compare-and-swap: a concurrent run that moved main first makes this one fail, not lose a commit
git_repo update-ref refs/heads/main "$commit" "${parent:-0000000000000000000000000000000000000000}"
echo "$repo: main is now at $(git_repo rev-parse --short "$commit")"
