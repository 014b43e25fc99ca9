import * as path from "node:path";
import { exitCodes, GalleyError } from "../core/errors.ts";
import type { HostRecord, Init } from "../providers/container/state.ts";
import { paint, write, writeJson } from "./output.ts";

const options = {
  image: {
    type: "string",
    default: "debian-bookworm",
    description: "up: the image new hosts are made from (default debian-bookworm)",
  },
  init: {
    type: "string",
    default: "systemd",
    description: "up: systemd (booted by systemd-nspawn, as on real servers) or sysv (lighter, faster)",
  },
  rebuild: {
    type: "boolean",
    default: false,
    description: "image: build the image and apt repository again",
  },
  json: { type: "boolean", default: false, description: "print one JSON object instead of text" },
  help: { type: "boolean", short: "h", description: "show this help" },
} as const;

interface Values {
  image: string;
  init: string;
  rebuild: boolean;
  json: boolean;
}

const actions = ["stop", "start", "kill", "cut", "connect", "destroy"] as const;
const subcommands = ["up", "list", "exec", ...actions, "down", "image"] as const;

/** `galley hosts up|list|exec|stop|start|kill|cut|connect|destroy|down|image`: real hosts on this machine (docs/hosts.md). */
export const hostsCommand = {
  summary:
    "Linux hosts on this machine (own network, disk, sshd): up, list, exec, stop, start, kill, destroy, down",
  usage:
    "up N|NAME… [--init systemd|sysv] [--image NAME] | list | exec NAME -- CMD… | stop|start|kill|cut|connect|destroy NAME… | down | image [--rebuild]   [--json]",
  options,
  async run(values: Values, positionals: string[]): Promise<number> {
    const [subcommand, ...args] = positionals;
    const log = (line: string) => process.stderr.write(`${line}\n`);
    switch (subcommand) {
      case "up":
        return up(values, args, log);
      case "list":
        noArguments("list", args);
        return list(values);
      case "exec":
        return exec(values, args);
      case "down":
        noArguments("down", args);
        return down(values, log);
      case "image":
        noArguments("image", args);
        return image(values, log);
      default:
        if ((actions as readonly string[]).includes(subcommand ?? "")) {
          return act(values, subcommand as (typeof actions)[number], args, log);
        }
        throw new GalleyError(
          "USAGE",
          subcommand === undefined
            ? "galley hosts: which subcommand?"
            : `galley hosts: unknown subcommand "${subcommand}"`,
          { hint: `subcommands: ${subcommands.join(", ")}; see: galley hosts --help` },
        );
    }
  },
};

async function up(values: Values, args: string[], log: (line: string) => void): Promise<number> {
  if (args.length === 0) {
    throw new GalleyError("USAGE", "galley hosts up: how many hosts, or which names?", {
      hint: "galley hosts up 3 (host1…host3), or galley hosts up web1 web2",
    });
  }
  if (values.init !== "systemd" && values.init !== "sysv") {
    throw new GalleyError("ARGS_INVALID", `--init must be systemd or sysv, not "${values.init}"`, {
      hint: "systemd boots hosts like real servers; sysv is lighter and faster",
    });
  }
  const count = args.length === 1 && /^\d+$/.test(args[0]!) ? Number(args[0]) : undefined;
  if (count !== undefined && (count < 1 || count > 253)) {
    throw new GalleyError("ARGS_INVALID", `galley hosts up ${count}: between 1 and 253 hosts`, {
      hint: "a fleet is one /24 subnet",
    });
  }
  const { up: bringUp } = await import("../providers/container/ops.ts");
  const { imageName } = await import("../providers/container/image.ts");
  const hosts = await bringUp({
    cwd: process.cwd(),
    ...(count !== undefined ? { count } : { names: args }),
    image: imageName(values.image),
    init: values.init as Init,
    log,
  });
  return printHosts(values, hosts, true);
}

async function list(values: Values): Promise<number> {
  const { list: listHosts } = await import("../providers/container/ops.ts");
  const { fleet } = await listHosts(process.cwd());
  const hosts = fleet?.hosts() ?? [];
  if (!values.json && hosts.length === 0) {
    write("no hosts here (galley hosts up 3 makes some)\n");
    return exitCodes.ok;
  }
  return printHosts(values, hosts, false);
}

async function exec(values: Values, args: string[]): Promise<number> {
  const [name, ...command] = args;
  if (name === undefined || command.length === 0) {
    throw new GalleyError("USAGE", "galley hosts exec: which host, and what command?", {
      hint: "galley hosts exec host1 -- hostname",
    });
  }
  const { findHost } = await import("../providers/container/ops.ts");
  const { execAttached, execInHost } = await import("../providers/container/exec.ts");
  const { preflight } = await import("../providers/container/preflight.ts");
  preflight();
  const host = await findHost(process.cwd(), name);
  if (!values.json) return execAttached(host, command);
  const result = await execInHost(host, command);
  writeJson({ status: result.exitCode === 0 ? "ok" : "failed", host: name, ...result });
  return result.exitCode;
}

async function act(
  values: Values,
  action: (typeof actions)[number],
  names: string[],
  log: (line: string) => void,
): Promise<number> {
  if (names.length === 0) {
    throw new GalleyError("USAGE", `galley hosts ${action}: which hosts?`, {
      hint: `galley hosts ${action} host1 host2 (galley hosts list shows them)`,
    });
  }
  const { onHosts } = await import("../providers/container/ops.ts");
  const hosts = await onHosts(process.cwd(), action, [...new Set(names)], log);
  if (action === "destroy") {
    if (values.json) writeJson({ status: "ok", destroyed: hosts.map((host) => host.name) });
    else write(`destroyed ${hosts.map((host) => host.name).join(", ")}\n`);
    return exitCodes.ok;
  }
  return printHosts(values, hosts, false);
}

async function down(values: Values, log: (line: string) => void): Promise<number> {
  const { down: takeDown } = await import("../providers/container/ops.ts");
  const report = await takeDown(process.cwd(), log);
  if (values.json) writeJson({ status: "ok", ...report });
  else {
    const names = report.hosts.length > 0 ? ` (${report.hosts.join(", ")})` : "";
    write(`down: removed ${report.hosts.length} hosts${names} and the bridge ${report.bridge}\n`);
  }
  return exitCodes.ok;
}

async function image(values: Values, log: (line: string) => void): Promise<number> {
  const { buildImage } = await import("../providers/container/rebuild.ts");
  const { imageName } = await import("../providers/container/image.ts");
  const built = await buildImage(imageName(values.image), values.rebuild, log);
  if (values.json) writeJson({ status: "ok", ...built });
  else write(`image ${built.image.name}: ${built.image.rootfs}\napt repository: ${built.repo.repo}\n`);
  return exitCodes.ok;
}

function printHosts(values: Values, hosts: HostRecord[], showUse: boolean): number {
  const dir = path.join(".galley", "hosts");
  if (values.json) {
    writeJson({
      status: "ok",
      hosts: hosts.map(describe),
      inventory: path.join(dir, "inventory.yaml"),
      key: path.join(dir, "id_ed25519"),
      knownHosts: path.join(dir, "known_hosts"),
    });
    return exitCodes.ok;
  }
  const rows = [
    ["NAME", "ADDRESS", "INIT", "STATUS"],
    ...hosts.map((h) => [h.name, h.address, h.init, status(h)]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  const lines = rows.map((row) =>
    row
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join("  ")
      .trimEnd(),
  );
  write(`${lines.join("\n")}\n`);
  const first = hosts[0];
  if (showUse && first) {
    write(
      `inventory: ${path.join(dir, "inventory.yaml")}  (galley push -i ${path.join(dir, "inventory.yaml")} …)\n`,
    );
    write(
      paint(
        "gray",
        `ssh: ssh -i ${dir}/id_ed25519 -o UserKnownHostsFile=${dir}/known_hosts root@${first.address}\n`,
      ),
    );
  }
  return exitCodes.ok;
}

function status(host: HostRecord): string {
  return host.cut && host.status === "running" ? "running (link cut)" : host.status;
}

function describe(host: HostRecord) {
  return {
    name: host.name,
    address: host.address,
    init: host.init,
    image: host.image,
    status: host.status,
    cut: host.cut,
    pid: host.status === "running" ? (host.pid ?? null) : null,
    netns: host.netns,
    veth: host.veth,
  };
}

function noArguments(subcommand: string, args: string[]): void {
  if (args.length > 0) {
    throw new GalleyError("USAGE", `galley hosts ${subcommand} takes no arguments (got ${args.join(" ")})`, {
      hint: "see: galley hosts --help",
    });
  }
}
