#!/usr/bin/env bash
# The README's main job: plan, apply and re-apply the example cookbook on this machine, then fetch the site.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "error[USAGE]: the demo installs nginx and creates a system user on this machine" >&2
  echo "hint: run it as root: sudo npm run demo" >&2
  exit 2
fi
galley() { node bin/galley.js "$@" --cookbooks examples/cookbooks; }
echo "== plan: what would change"
galley plan webapp
echo
echo "== apply"
galley apply webapp
echo
echo "== apply again: nothing left to change"
galley apply webapp
echo
port=$(sed -n 's/^ *port: *//p' examples/cookbooks/webapp/attributes/default.yaml)
echo "== the site, served by nginx on port $port"
curl -fsS "http://127.0.0.1:$port/"
