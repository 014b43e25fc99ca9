import * as v from "valibot";
import { GalleyError } from "../core/errors.ts";
import type { Host } from "../core/host.ts";
import { defineResourceType, described } from "../core/resource.ts";

const schema = v.strictObject({
  name: described(
    v.pipe(
      v.string(),
      v.regex(/^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?$/, 'a Debian package name like "nginx" or "libc6:amd64"'),
    ),
    "the package name (defaults to the resource name)",
  ),
  version: v.optional(
    described(
      v.pipe(v.string(), v.regex(/^[0-9][A-Za-z0-9.+~:-]*$/, 'a Debian version like "1.24.0-1"')),
      "pin this exact version: install installs it, downgrading or changing to it when another is installed",
    ),
  ),
  options: v.optional(
    described(
      v.array(v.string()),
      'extra apt-get options, e.g. ["--no-install-recommends"]; the -o/-c ones also go to apt-cache and apt-get update',
    ),
    () => [],
  ),
  updateCache: v.optional(
    described(
      v.boolean(),
      "run apt-get update first when the package (or the pinned version) has no install candidate",
    ),
    false,
  ),
});

type Props = v.InferOutput<typeof schema>;

/** dpkg's view of the package, plus apt's candidate when an action may need it. */
interface State {
  /** dpkg's state: "installed", "config-files", "not-installed", "unpacked"… */
  status: string;
  /** the installed (or, for config-files, the last removed) version */
  version: string | undefined;
  /** what `apt-get install` would install; undefined when the apt sources have none */
  candidate?: string | undefined;
  /** every version the apt sources and the dpkg database know; undefined when apt was not asked */
  versions?: string[];
}

/** A Debian package, managed with apt and dpkg. */
export const pkg = defineResourceType<typeof schema, State>({
  type: "package",
  description:
    "A system package: installed (at a pinned version, or upgraded to the candidate), removed or purged. apt/dpkg on Debian and Ubuntu.",
  actions: ["install", "upgrade", "remove", "purge"],
  schema,
  nameProperty: "name",
  // maintainer scripts may create users, start services, write files anywhere
  broadEffects: true,

  key: (props) => props.name,

  async read(host, props) {
    await requireApt(host, props.name);
    const state = await dpkgState(host, props.name);
    // a pin that is already installed needs nothing from apt; anything else may need the candidate
    if (props.version !== undefined && isInstalled(state) && state.version === props.version) return state;
    return { ...state, ...(await aptPolicy(host, props)) };
  },

  diff(current, desired, action) {
    const installed = current && isInstalled(current) ? current.version : undefined;
    switch (action) {
      case "remove":
        // anything dpkg still has files of, half-installed ones included
        return current && !["not-installed", "config-files"].includes(current.status)
          ? [{ property: "status", from: current.status, to: "removed" }]
          : [];
      case "purge":
        return current && current.status !== "not-installed"
          ? [{ property: "status", from: current.status, to: "purged" }]
          : [];
      default: {
        const target =
          desired.version ?? (installed && action === "install" ? installed : current?.candidate);
        if (installed !== undefined && (target === undefined || target === installed)) return [];
        return [{ property: "version", from: installed ?? "absent", to: target ?? "(no candidate)" }];
      }
    }
  },

  async apply(host, desired, action, current) {
    await requireApt(host, desired.name);
    if (action === "remove" || action === "purge")
      return aptGet(host, desired, [action, "-y", "-q", desired.name]);
    let policy = current?.versions ? current : await aptPolicy(host, desired);
    if (!hasCandidate(policy, desired) && desired.updateCache) {
      await aptGet(host, desired, ["update", "-q"]);
      policy = await aptPolicy(host, desired);
    }
    if (!hasCandidate(policy, desired)) throw noCandidate(desired, policy.versions ?? []);
    const spec = desired.version === undefined ? desired.name : `${desired.name}=${desired.version}`;
    const confold = ["-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"];
    const downgrade = desired.version === undefined ? [] : ["--allow-downgrades"];
    await aptGet(host, desired, ["install", "-y", "-q", ...confold, ...downgrade, spec]);
  },
});

/** Refuses hosts without apt: the only package provider so far. */
async function requireApt(host: Host, name: string): Promise<void> {
  const { os } = await host.facts();
  if (os.family === "debian" || os.id === "debian" || os.id === "ubuntu") return;
  throw new GalleyError(
    "PLATFORM_UNSUPPORTED",
    `package[${name}]: no package provider for ${os.prettyName || os.id} (platform ${os.id}, family ${os.family}) on ${host.name}`,
    {
      hint: "Galley manages packages with apt on Debian and Ubuntu only; use an execute resource for other package managers",
    },
  );
}

function isInstalled(state: State): boolean {
  return state.status === "installed" || state.status.startsWith("triggers-");
}

async function dpkgState(host: Host, name: string): Promise<State> {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax, not a template
  const result = await host.exec(["dpkg-query", "--show", "--showformat=${Status}\\t${Version}\\n", name]);
  // exit 1: dpkg has never heard of the package
  if (result.exitCode === 1 && !result.stdout.trim()) return { status: "not-installed", version: undefined };
  if (result.exitCode !== 0) throw readFailed(name, "dpkg-query", result.stderr);
  // a multi-arch name without an architecture lists one line per architecture: prefer an installed one
  const lines = result.stdout
    .split("\n")
    .filter(Boolean)
    .map((line) => line.split("\t"));
  const states = lines.map(([status = "", version = ""]) => ({
    status: status.split(" ").at(-1) ?? "not-installed",
    version: version || undefined,
  }));
  return states.find(isInstalled) ?? states.find((s) => s.status !== "not-installed") ?? states[0]!;
}

async function aptPolicy(host: Host, props: Props): Promise<Required<Pick<State, "candidate" | "versions">>> {
  const result = await host.exec(["apt-cache", ...configOptions(props.options), "policy", props.name]);
  if (result.exitCode !== 0) throw readFailed(props.name, "apt-cache policy", result.stderr);
  const candidate = /^\s+Candidate: (\S+)$/m.exec(result.stdout)?.[1];
  // version-table lines look like " *** 1.0 500" (installed) or "     2.0 500"
  const versions = [...result.stdout.matchAll(/^ (?:\*\*\*| {3}) (\S+) -?\d+$/gm)].map((m) => m[1]!);
  return { candidate: candidate === "(none)" ? undefined : candidate, versions };
}

function hasCandidate(policy: Pick<State, "candidate" | "versions">, props: Props): boolean {
  return props.version === undefined
    ? policy.candidate !== undefined
    : (policy.versions ?? []).includes(props.version);
}

/** The options apt-cache understands too: configuration (-o, -c), not apt-get's own switches. */
function configOptions(options: readonly string[]): string[] {
  const result: string[] = [];
  for (let i = 0; i < options.length; i++) {
    const option = options[i]!;
    if (["-o", "--option", "-c", "--config-file"].includes(option)) result.push(option, options[++i] ?? "");
    else if (/^(-o.|-c.|--option=|--config-file=)/.test(option)) result.push(option);
  }
  return result;
}

async function aptGet(host: Host, props: Props, args: string[]): Promise<void> {
  const argv = ["apt-get", ...props.options, ...args];
  const result = await host.exec(argv, { env: { DEBIAN_FRONTEND: "noninteractive" } });
  if (result.exitCode === 0) return;
  const output = (result.stderr.trim() || result.stdout.trim()).split("\n").slice(-5).join("\n");
  throw new GalleyError(
    "APPLY_FAILED",
    `package[${props.name}]: ${argv.join(" ")} exited ${result.exitCode}: ${output}`,
    {
      hint: "read apt's message above: another apt or dpkg run may hold the lock, or a dependency cannot be installed",
    },
  );
}

function noCandidate(props: Props, versions: string[]): GalleyError {
  const what =
    props.version === undefined
      ? `no package ${props.name}`
      : `no version ${props.version} of package ${props.name}`;
  const known =
    props.version !== undefined && versions.length > 0 ? ` (known versions: ${versions.join(", ")})` : "";
  return new GalleyError("APPLY_FAILED", `${what} in the configured apt sources${known}`, {
    hint: props.updateCache
      ? "apt-get update did not help: check the name, the version and the apt sources (a virtual package needs its real name)"
      : `run apt-get update or set updateCache: r.package("${props.name}", { updateCache: true }); check the name and the apt sources`,
  });
}

function readFailed(name: string, command: string, stderr: string): GalleyError {
  return new GalleyError("EXEC_FAILED", `package[${name}]: ${command} failed: ${stderr.trim()}`, {
    hint: "the apt or dpkg database may be locked or damaged; run the command by hand to see why",
  });
}
