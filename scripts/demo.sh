#!/usr/bin/env bash
# The README's main job: the examples/webapp stack (HAProxy, three Node.js app instances deployed
# from a git repository, PostgreSQL) brought up on container hosts of this machine; curl through
# the load balancer reaches every app instance; a fourth app instance joins HAProxy when it starts
# and one leaves when it stops, all through configure. GALLEY_DEMO_KEEP=1 leaves the stack running.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
if [ "$(id -u)" != 0 ]; then
  echo "error[USAGE]: the demo makes container hosts on this machine (network namespaces, mounts)" >&2
  echo "hint: run it as root: sudo npm run demo" >&2
  exit 2
fi
galley() { node "$repo/bin/galley.js" "$@"; }
bash scripts/prepare-hosts.sh

# the kitchen: a copy of the example, so its store, hosts and app repository stay out of the checkout
kitchen=$(mktemp -d /tmp/galley-webapp-XXXXXX)
cp -r examples/webapp/. "$kitchen"
rm -rf "$kitchen/.galley"
if [ "${GALLEY_DEMO_KEEP:-}" != 1 ]; then
  trap 'cd "$kitchen" && galley hosts down >/dev/null; rm -rf "$kitchen"' EXIT
fi
cd "$kitchen"
bash make-app-repo.sh

echo "== galley stack up webapp (the first time builds the hosts' image: about a minute)"
galley stack up webapp
echo
lb=$(galley stack status webapp --json | node -e '
  let text = ""; process.stdin.on("data", (c) => (text += c));
  process.stdin.on("end", () => console.log(JSON.parse(text).instances.find((i) => i.name === "lb1").address));')
echo "== the load balancer: http://$lb/  (six requests, round robin over the app instances)"
for _ in 1 2 3 4 5 6; do curl -fsS "http://$lb/"; done
echo
echo "== galley instance start app4: setup, deploy, online, then configure everywhere (HAProxy learns of it)"
galley instance start app4 --stack webapp
for _ in 1 2 3 4 5 6 7 8; do curl -fsS "http://$lb/"; done | sed 's/ (.*//' | sort | uniq -c
echo
echo "== galley instance stop app2: shutdown, its host stops, configure on the rest (HAProxy drops it)"
galley instance stop app2 --stack webapp
for _ in 1 2 3 4 5 6; do curl -fsS "http://$lb/"; done | sed 's/ (.*//' | sort | uniq -c
echo
echo "== galley history --stack webapp"
galley history --stack webapp --limit 12
if [ "${GALLEY_DEMO_KEEP:-}" = 1 ]; then
  echo
  echo "the stack runs on: cd $kitchen; galley stack status webapp; galley stack down webapp; galley hosts down"
fi
