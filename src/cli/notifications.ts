import { exitCodes, GalleyError } from "../core/errors.ts";
import { type LedgerEntry, readLedger } from "../core/ledger.ts";
import { LocalHost } from "../hosts/local.ts";
import { defaultStateDir } from "../hosts/statedir.ts";
import { paint, write, writeJson } from "./output.ts";

const options = {
  "state-dir": {
    type: "string",
    description: "the state dir whose ledger to read (default /var/lib/galley as root, like apply)",
  },
  all: { type: "boolean", default: false, description: "(drop) drop every notification" },
  json: { type: "boolean", default: false, description: "print one JSON object instead of text" },
  help: { type: "boolean", short: "h", description: "show this help" },
} as const;

interface Values {
  "state-dir"?: string;
  all: boolean;
  json: boolean;
}

/** `galley notifications list|drop`: the notifications this machine's ledger holds for later runs. */
export const notificationsCommand = {
  summary: "list the notifications kept for later runs, or drop some",
  usage: "list | drop ID…|--all   [--state-dir DIR] [--json]",
  options,
  async run(values: Values, positionals: string[]): Promise<number> {
    const [name, ...ids] = positionals;
    if (name !== "list" && name !== "drop") {
      throw new GalleyError(
        "USAGE",
        name === undefined
          ? "galley notifications: which subcommand?"
          : `galley notifications: unknown subcommand "${name}"`,
        { hint: "subcommands: list, drop; see: galley notifications --help" },
      );
    }
    const stateDir = values["state-dir"] ?? defaultStateDir();
    const ledger = await readLedger(new LocalHost(), stateDir);
    if (name === "list") {
      if (values.json) writeJson({ stateDir, notifications: ledger.entries.map(describe) });
      else if (ledger.entries.length === 0) write(`no notifications kept in ${stateDir}\n`);
      else for (const entry of ledger.entries) write(`${formatEntry(entry)}\n`);
      return exitCodes.ok;
    }
    if (!values.all && ids.length === 0)
      throw new GalleyError("USAGE", "galley notifications drop: which notifications?", {
        hint: "give their ids (galley notifications list shows them), or --all",
      });
    const unknown = ids.filter((id) => !ledger.entries.some((entry) => entry.id === id));
    if (unknown.length > 0)
      throw new GalleyError("ARGS_INVALID", `no notification ${unknown.join(", ")} in ${stateDir}`, {
        hint: "galley notifications list shows the ids",
      });
    const dropped = ledger.entries.filter((entry) => values.all || ids.includes(entry.id));
    ledger.entries = ledger.entries.filter((entry) => !dropped.includes(entry));
    if (dropped.length > 0) await ledger.save();
    if (values.json) writeJson({ stateDir, dropped: dropped.map(describe) });
    else for (const entry of dropped) write(`dropped ${formatEntry(entry)}\n`);
    return exitCodes.ok;
  },
};

function describe(entry: LedgerEntry) {
  const { key: _key, targetHash: _t, sourceHash: _s, ...shown } = entry;
  return shown;
}

function formatEntry(entry: LedgerEntry): string {
  const scope = entry.scope.replace(/^cookbook:/, "cookbook ").replace(/^file:/, "recipe ");
  const gone = entry.reported ? paint("yellow", " (target no longer declared)") : "";
  return `${paint("bold", entry.id)} ${entry.target} ${entry.action} (${entry.timing}, from ${entry.by.join(", ")}, ${scope}, run list ${entry.runList.join(" ") || "?"}, since ${entry.since}, ${entry.state})${gone}`;
}
