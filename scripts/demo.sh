#!/usr/bin/env bash
# The README's main job: the examples/webapp stack (HAProxy, three Node.js app instances deployed
# from a git repository, PostgreSQL) brought up on container hosts of this machine; curl through
# the load balancer reaches every app instance; a fourth app instance joins HAProxy when it starts
# and one leaves when it stops, all through configure; then a second revision is deployed with a
# rolling strategy while curl hits the load balancer (0 failed requests), and rolled back.
# GALLEY_DEMO_KEEP=1 leaves the stack running, and `galley server` serving it: the web control
# panel's address is printed at the end (GALLEY_DEMO_LISTEN, default 127.0.0.1:8443, says where).
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
# curl through the load balancer until told to stop, counting answers and failures
count_requests() {
  local ok=0 failed=0
  while [ ! -e "$1.stop" ]; do
    if curl -fsS -o /dev/null --max-time 5 "http://$lb/"; then ok=$((ok + 1)); else failed=$((failed + 1)); fi
    echo "$ok $failed" >"$1"
  done
}
# runs a galley command while curl hits the load balancer; says how many requests failed (must be 0)
under_load() {
  local counts
  counts=$(mktemp)
  echo "0 0" >"$counts"
  count_requests "$counts" &
  local curler=$!
  galley "$@"
  touch "$counts.stop"
  wait "$curler"
  read -r ok failed <"$counts"
  rm -f "$counts" "$counts.stop"
  echo "requests through the load balancer meanwhile: $ok answered, $failed failed"
  [ "$failed" = 0 ]
}
echo
echo "== galley deploy hello --strategy rolling: a second revision, one instance at a time, under load"
echo "// the second revision" >>app/server.js
bash make-app-repo.sh
under_load deploy hello --stack webapp --strategy rolling
for _ in 1 2 3; do curl -fsS "http://$lb/"; done
echo
echo "== galley rollback hello --strategy rolling: back to the first release, still on disk (drain, switch and restart only)"
under_load rollback hello --stack webapp --strategy rolling
for _ in 1 2 3; do curl -fsS "http://$lb/"; done
echo
echo "== galley deployments hello --stack webapp"
galley deployments hello --stack webapp
echo
echo "== galley history --stack webapp"
galley history --stack webapp --limit 12
if [ "${GALLEY_DEMO_KEEP:-}" = 1 ]; then
  echo
  listen=${GALLEY_DEMO_LISTEN:-127.0.0.1:8443}
  echo "== galley server --listen $listen: the API and the web control panel for the kept stack (left running)"
  server_log="$kitchen/.galley/server.log"
  # its own session, so that it outlives this script and the terminal it ran in
  setsid node "$repo/bin/galley.js" server --listen "$listen" >"$server_log" 2>&1 </dev/null &
  server_pid=$!
  for _ in $(seq 100); do
    grep -q "listening on" "$server_log" && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.2
  done
  panel=$(sed -n 's/^galley server: listening on //p' "$server_log")
  if [ -z "$panel" ]; then
    cat "$server_log" >&2
    echo "the server did not start (another port: GALLEY_DEMO_LISTEN=127.0.0.1:9443); start it yourself:" >&2
    echo "  cd $kitchen && galley server --listen 127.0.0.1:9443" >&2
  else
    echo "the web control panel: $panel/"
    echo "  log in with the admin token in $kitchen/.galley/server/admin.token"
    echo "  the certificate is the server's own CA's: $(sed -n 's/^CA fingerprint (sha256): //p' "$server_log")"
    echo "  (trust $kitchen/.galley/server/tls/ca.pem, or accept the browser's warning after comparing it)"
    echo "  the server: pid $server_pid (stop it with: kill $server_pid); its log: $server_log"
  fi
  echo
  echo "the stack runs on: cd $kitchen; galley stack status webapp; galley stack down webapp; galley hosts down"
fi
