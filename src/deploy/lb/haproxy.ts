import { GalleyError } from "../../core/errors.ts";
import type { Host } from "../../core/host.ts";
import type { BackendServerState, LoadBalancerDriver } from "./index.ts";

/** Where Debian's HAProxy (and the webapp example's lb cookbook) puts the runtime API. */
export const defaultSocket = "/run/haproxy/admin.sock";

// One connection per command (HAProxy's non-interactive CLI); socat, else perl-base (Essential
// on Debian). The two answers are separated by a marker line.
const separator = "--- galley: show servers state ---";
const script = `set -u
hacli() {
  if command -v socat >/dev/null 2>&1; then printf '%s\\n' "$2" | socat -t 5 stdio "UNIX-CONNECT:$1"
  elif command -v perl >/dev/null 2>&1; then
    perl -MIO::Socket::UNIX -e 'alarm 10; my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die "$!\\n"; print $s "$ARGV[1]\\n"; print while <$s>;' "$1" "$2"
  else exit 127; fi
}
[ -S "$1" ] || exit 126
hacli "$1" "show stat $2 4 -1" || exit 125
echo "${separator}"
hacli "$1" "show servers state $2" || exit 125
`;

/**
 * HAProxy through its runtime API (the admin socket), read with `show stat` (status and current
 * sessions) and `show servers state` (the admin state, which `show stat` does not say when a
 * drained server is also down).
 *
 * @example const states = await loadBalancers.haproxy.states(lbHost, "app"); states.get("app1")?.drained
 */
export const haproxyDriver: LoadBalancerDriver = {
  async states(host: Host, backend: string, options: { socket?: string } = {}) {
    const socket = options.socket ?? defaultSocket;
    if (!/^[A-Za-z0-9_.:-]+$/.test(backend)) {
      throw new GalleyError("ARGS_INVALID", `"${backend}" is not an HAProxy backend name`, {
        hint: "a backend name is letters, digits and . _ : -",
      });
    }
    const result = await host.exec(["sh", "-c", script, "sh", socket, backend], { timeoutMs: 30_000 });
    const where = `HAProxy on ${host.name}`;
    if (result.exitCode === 127) {
      throw new GalleyError(
        "EXEC_FAILED",
        `${where}: neither socat nor perl is installed to reach ${socket}`,
        {
          hint: `install socat on ${host.name} (the lb layer's packages)`,
        },
      );
    }
    if (result.exitCode === 126) {
      throw new GalleyError("EXEC_FAILED", `${where}: no admin socket at ${socket}`, {
        hint: "is haproxy running, with `stats socket <path> level admin` in its global section?",
      });
    }
    if (result.exitCode !== 0 || result.timedOut) {
      throw new GalleyError(
        "EXEC_FAILED",
        `${where}: the admin socket ${socket} did not answer: ${result.stderr.trim() || `exit ${result.exitCode}`}`,
        { hint: "is haproxy running? check `systemctl status haproxy` and the socket's `level admin`" },
      );
    }
    const [stat = "", state = ""] = result.stdout.split(`${separator}\n`);
    return serverStates(backend, stat, state, where);
  },
};

/** The servers of `backend` from the answers to `show stat` (CSV) and `show servers state`. */
export function serverStates(
  backend: string,
  stat: string,
  state: string,
  where = "HAProxy",
): Map<string, BackendServerState> {
  const stats = parseShowStat(stat, backend, where);
  const admin = parseServersState(state, backend);
  const weights = parseServersState(state, backend, "srv_uweight");
  const servers = new Map<string, BackendServerState>();
  for (const [name, { status, sessions }] of stats) {
    const bits = admin.get(name);
    // no admin state (an older HAProxy): what the status says
    const adminState = bits === undefined ? adminFromStatus(status) : adminFromBits(bits);
    servers.set(name, {
      name,
      status,
      sessions,
      // "UP 1/2": up, its health not yet (or no longer) full, as right after a start or reload
      up: status === "UP" || status.startsWith("UP "),
      // out of rotation, and nothing left to finish: no session, or the server is down (a dead
      // host's sessions never end; HAProxy sends a down server nothing new)
      drained: adminState !== "ready" && (sessions === 0 || status.startsWith("DOWN")),
      admin: adminState,
      ...(weights.has(name) ? { weight: weights.get(name)! } : {}),
    });
  }
  return servers;
}

/**
 * `show stat` CSV (header `# pxname,svname,…`): each server row of `backend` with its status and
 * current sessions (`scur`). The backend's own row (svname BACKEND) and others are left out.
 */
export function parseShowStat(
  text: string,
  backend: string,
  where = "HAProxy",
): Map<string, { status: string; sessions: number }> {
  const lines = text.split("\n");
  const header = lines.find((line) => line.startsWith("# "));
  if (!header) {
    throw new GalleyError("EXEC_FAILED", `${where}: show stat gave no CSV: ${text.trim().slice(0, 200)}`, {
      hint: `does HAProxy have a backend "${backend}"? (show stat names it when it does)`,
    });
  }
  const columns = header.slice(2).split(",");
  const at = (name: string) => {
    const index = columns.indexOf(name);
    if (index < 0) throw new GalleyError("EXEC_FAILED", `${where}: show stat has no column ${name}`);
    return index;
  };
  const [pxname, svname, scur, status] = [at("pxname"), at("svname"), at("scur"), at("status")];
  const servers = new Map<string, { status: string; sessions: number }>();
  for (const line of lines) {
    if (line === "" || line.startsWith("#")) continue;
    const cells = line.split(",");
    const name = cells[svname] ?? "";
    if (cells[pxname] !== backend || name === "BACKEND" || name === "FRONTEND") continue;
    servers.set(name, { status: cells[status] ?? "", sessions: Number(cells[scur] ?? 0) || 0 });
  }
  return servers;
}

/**
 * `show servers state` (version line `1`, header `# be_id be_name srv_id srv_name srv_addr
 * srv_op_state srv_admin_state srv_uweight …`): each server of `backend` with its
 * `srv_admin_state` bits, or another numeric column (`srv_uweight`: the weight asked at runtime).
 */
export function parseServersState(
  text: string,
  backend: string,
  column: "srv_admin_state" | "srv_uweight" = "srv_admin_state",
): Map<string, number> {
  const lines = text.split("\n");
  const header = lines.find((line) => line.startsWith("# be_id"));
  const servers = new Map<string, number>();
  if (!header) return servers;
  const columns = header.slice(2).split(" ");
  const [beName, srvName, adminState] = ["be_name", "srv_name", column].map((c) => columns.indexOf(c));
  for (const line of lines) {
    if (line === "" || line.startsWith("#") || line === "1") continue;
    const cells = line.split(" ");
    if (cells[beName!] !== backend) continue;
    const bits = Number(cells[adminState!]);
    if (Number.isInteger(bits)) servers.set(cells[srvName!] ?? "", bits);
  }
  return servers;
}

// srv_admin_state (HAProxy's server.h): any maintenance 0x01 forced, 0x02 inherited, 0x04 from
// the configuration, 0x20 resolution; drain 0x08 forced, 0x10 inherited
function adminFromBits(bits: number): BackendServerState["admin"] {
  if (bits & 0x27) return "maint";
  if (bits & 0x18) return "drain";
  return "ready";
}

function adminFromStatus(status: string): BackendServerState["admin"] {
  if (status.startsWith("MAINT")) return "maint";
  if (status.startsWith("DRAIN")) return "drain";
  return "ready";
}
