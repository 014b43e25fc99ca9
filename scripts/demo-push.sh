#!/usr/bin/env bash
# The solo and push demo: plan, apply and re-apply the example cookbook on this machine, fetch the
# site; then make three real hosts on this machine and push the same cookbook to all of them.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
if [ "$(id -u)" != 0 ]; then
  echo "error[USAGE]: the demo installs nginx, creates a system user and makes container hosts on this machine" >&2
  echo "hint: run it as root: sudo npm run demo" >&2
  exit 2
fi
galley() { node "$repo/bin/galley.js" "$@"; }
echo "== plan: what would change"
galley plan webapp --cookbooks examples/cookbooks
echo
echo "== apply"
galley apply webapp --cookbooks examples/cookbooks
echo
echo "== apply again: nothing left to change"
galley apply webapp --cookbooks examples/cookbooks
echo
port=$(sed -n 's/^ *port: *//p' examples/cookbooks/webapp/attributes/default.yaml)
echo "== the site, served by nginx on port $port"
curl -fsS "http://127.0.0.1:$port/"
echo

# a fleet: three hosts with their own address, root filesystem, sshd and systemd
bash scripts/prepare-hosts.sh
fleet=$(mktemp -d /tmp/galley-demo-XXXXXX)
cookbooks=$repo/examples/cookbooks
trap 'cd "$fleet" && galley hosts down >/dev/null; rm -rf "$fleet"' EXIT
cd "$fleet"
echo "== three hosts on this machine (the first time builds their image: about a minute)"
galley hosts up 3
echo
echo "== push the same cookbook to all of them over SSH"
galley push -i .galley/hosts/inventory.yaml --cookbooks "$cookbooks" --no-diff webapp
echo
echo "== push again: nothing left to change on any host"
galley push -i .galley/hosts/inventory.yaml --cookbooks "$cookbooks" webapp
echo
for address in $(sed -n 's/.*{ address: \([0-9.]*\) }.*/\1/p' .galley/hosts/inventory.yaml); do
  echo "== http://$address:$port/"
  curl -fsS "http://$address:$port/" | grep Release
done
