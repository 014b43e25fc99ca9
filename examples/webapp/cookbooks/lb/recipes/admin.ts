import type { RecipeContext } from "galley";

// Shell for HAProxy's runtime API (the admin socket), run on the lb host by configure's executes.

/**
 * `hacli SOCKET COMMAND`: one command over HAProxy's admin socket, its answer on stdout. socat
 * when installed, else perl-base (Essential on Debian, so always there); 127 when neither is.
 */
export const hacli = `hacli() {
  if command -v socat >/dev/null 2>&1; then printf '%s\\n' "$2" | socat -t 5 stdio "UNIX-CONNECT:$1"
  elif command -v perl >/dev/null 2>&1; then
    perl -MIO::Socket::UNIX -e 'alarm 10; my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die "HAProxy admin socket $ARGV[0]: $!\\n"; print $s "$ARGV[1]\\n"; print while <$s>;' "$1" "$2"
  else echo "neither socat nor perl is installed: install socat" >&2; return 127; fi
}
workerPid() { hacli "$1" "show info" 2>/dev/null | sed -n 's/^Pid: //p'; }
`;

/**
 * \`reload SOCKET STATE_FILE\`: saves every server's state (\`show servers state\`) to the file
 * HAProxy loads at start (\`load-server-state-from-file\`), reloads, and waits until the new
 * worker answers on the socket, so that runtime commands after it reach the new worker.
 */
export const reloadScript = `${hacli}
set -u
sock=$1 state=$2
systemctl is-active --quiet haproxy || exec systemctl restart haproxy
old=$(workerPid "$sock")
if hacli "$sock" "show servers state" >"$state.tmp" 2>/dev/null && [ "$(head -n 1 "$state.tmp")" = 1 ]; then
  mv "$state.tmp" "$state"
else
  rm -f "$state.tmp"
fi
systemctl reload haproxy
i=0
while [ $i -lt 100 ]; do
  pid=$(workerPid "$sock")
  if [ -n "$pid" ] && [ "$pid" != "$old" ]; then exit 0; fi
  i=$((i + 1)); sleep 0.1
done
echo "haproxy was reloaded but no new process answered on $sock within 10 s (journalctl -u haproxy)" >&2
exit 1
`;

/**
 * \`states check|apply SOCKET STATE_FILE BACKEND NAME=drain|ready[:WEIGHT]…\`: whether each
 * server's admin state and weight match (check: exit 0 when all do), or sets those that differ
 * (\`set server … state\`, \`set server … weight\`) and saves the states to STATE_FILE. Retries
 * for 10 s while the socket does not answer (a reload or restart just happened). Drained: forced
 * drain (0x08) or forced maintenance (0x01) in \`srv_admin_state\`, field 7 of \`show servers
 * state\`; the weight asked at runtime is \`srv_uweight\`, field 8 (HAProxy restores it from the
 * state file at a reload while the configured weight is unchanged).
 */
export const statesScript = `${hacli}
set -u
mode=$1 sock=$2 state=$3 backend=$4
shift 4
i=0
while :; do
  out=$(hacli "$sock" "show servers state $backend" 2>&1) && [ "$(printf '%s\\n' "$out" | head -n 1)" = 1 ] && break
  i=$((i + 1))
  if [ $i -ge 100 ]; then
    echo "HAProxy did not answer 'show servers state $backend' on $sock for 10 s: $out" >&2
    exit 2
  fi
  sleep 0.1
done
for want in "$@"; do
  name=\${want%%=*} target=\${want#*=} weight=
  case $target in *:*) weight=\${target#*:} target=\${target%%:*} ;; esac
  row=$(printf '%s\\n' "$out" | awk -v s="$name" '$1 !~ /^#/ && $4 == s { print $7, $8 }')
  admin=\${row%% *} uweight=\${row#* }
  if [ -z "$row" ]; then
    [ "$mode" = check ] && exit 1
    echo "server $backend/$name is not in the running HAProxy (is the configuration reloaded?)" >&2
    exit 2
  fi
  if [ $((admin & 9)) -ne 0 ]; then now=drain; else now=ready; fi
  if [ -n "$weight" ] && [ "$uweight" != "$weight" ]; then
    [ "$mode" = check ] && exit 1
    answer=$(hacli "$sock" "set server $backend/$name weight $weight")
    if [ -n "$answer" ]; then echo "set server $backend/$name weight $weight: $answer" >&2; exit 2; fi
    echo "$backend/$name: weight $uweight -> $weight"
  fi
  [ "$now" = "$target" ] && continue
  [ "$mode" = check ] && exit 1
  answer=$(hacli "$sock" "set server $backend/$name state $target")
  if [ -n "$answer" ]; then echo "set server $backend/$name state $target: $answer" >&2; exit 2; fi
  echo "$backend/$name: $now -> $target"
done
if [ "$mode" = apply ]; then
  hacli "$sock" "show servers state" >"$state.tmp" && mv "$state.tmp" "$state"
fi
exit 0
`;

/** The admin state a server should have: drain when its instance is out of service. */
export type AdminState = "drain" | "ready";

/**
 * An instance's HAProxy weight: the stack state's \`weight\` (0..256, set by an A/B deployment;
 * 100 when the state has none).
 */
export function weightOf(instance: { weight?: unknown }): number {
  const weight = instance.weight;
  if (weight === undefined) return 100;
  if (typeof weight !== "number" || !Number.isInteger(weight) || weight < 0 || weight > 256) {
    throw new Error(`the stack state's weight ${String(weight)} is not a whole number from 0 to 256`);
  }
  return weight;
}

/**
 * The names of instances the lb keeps out of service: the stack state's \`inService: false\` (set
 * by a deployment while it drains an instance) and the attribute \`lb.out_of_service\` (a list of
 * instance names, for an operator or a test).
 */
export function outOfService(r: RecipeContext): Set<string> {
  const names = new Set<string>();
  const listed: unknown = r.attrs.lb?.out_of_service ?? [];
  if (!Array.isArray(listed) || listed.some((name) => typeof name !== "string")) {
    throw new Error("the attribute lb.out_of_service must be a list of instance names");
  }
  for (const name of listed) names.add(name);
  for (const instance of r.stack.instances()) {
    if ((instance as { inService?: boolean }).inService === false) names.add(instance.name);
  }
  return names;
}

/** Not a recipe of its own: the runtime API's shell, shared by lb::configure. */
export default function (_r: RecipeContext) {}
