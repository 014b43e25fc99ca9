import * as v from "valibot";
import { GalleyError } from "../core/errors.ts";
import type { Host } from "../core/host.ts";
import { type Change, defineResourceType, described, optional } from "../core/resource.ts";
import { run } from "../core/fsops.ts";
import { accountNameSchema } from "./user.ts";

const months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const weekdays = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/** Bounds and names of each schedule field, as Debian's cron reads them. */
const fields = {
  minute: { min: 0, max: 59, names: [] as string[], first: 0 },
  hour: { min: 0, max: 23, names: [] as string[], first: 0 },
  day: { min: 1, max: 31, names: [] as string[], first: 0 },
  month: { min: 1, max: 12, names: months, first: 1 },
  weekday: { min: 0, max: 7, names: weekdays, first: 0 },
} as const;

type FieldName = keyof typeof fields;
const fieldNames = Object.keys(fields) as FieldName[];
const times = [
  "@reboot",
  "@yearly",
  "@annually",
  "@monthly",
  "@weekly",
  "@daily",
  "@midnight",
  "@hourly",
] as const;

/** Why `text` is not a valid cron field (`*`, numbers, names, ranges, lists, steps), or undefined. */
export function cronFieldError(field: FieldName, text: string): string | undefined {
  const { min, max, names, first } = fields[field];
  const value = (part: string): number | string => {
    const index = names.indexOf(part.toLowerCase());
    if (index >= 0) return index + first;
    if (!/^\d+$/.test(part)) {
      return `"${part}" is not a number${names.length > 0 ? ` or a name (${names.join(", ")})` : ""}`;
    }
    const n = Number(part);
    return n < min || n > max ? `${n} is out of range ${min}-${max}` : n;
  };
  for (const item of text.split(",")) {
    const [range = "", step, ...extra] = item.split("/");
    if (extra.length > 0) return `"${item}" has more than one step`;
    if (step !== undefined && !/^[1-9]\d*$/.test(step))
      return `step "${step}" in "${item}" must be a number from 1`;
    if (range === "*") continue;
    const [from = "", to, ...more] = range.split("-");
    if (more.length > 0 || from === "") return `"${item}" is not a value, a range a-b or *`;
    const start = value(from);
    if (typeof start === "string") return start;
    if (to === undefined) {
      if (step !== undefined) return `"${item}": a step needs a range or *, e.g. ${from}-${max}/${step}`;
      continue;
    }
    const end = value(to);
    if (typeof end === "string") return end;
    if (start > end) return `range "${range}" goes backwards: cron would never run it`;
  }
  return undefined;
}

const cronField = (field: FieldName, description: string) =>
  v.optional(
    v.pipe(
      v.union([v.string(), v.pipe(v.number(), v.integer())]),
      v.description(description),
      v.transform((input) => String(input).trim()),
      v.rawCheck(({ dataset, addIssue }) => {
        const error = dataset.typed ? cronFieldError(field, dataset.value) : undefined;
        if (error) addIssue({ message: `${field}: ${error}` });
      }),
    ),
  );

const oneLine = (what: string, description: string) =>
  v.pipe(
    v.string(),
    v.description(description),
    v.regex(/^[^\n\r]*$/, `${what} must be one line`),
    v.trim(),
    v.minLength(1),
  );

const schema = v.pipe(
  v.strictObject({
    name: oneLine("name", "the entry's identifier, kept as a `# Galley: NAME` line above it"),
    minute: cronField("minute", "0-59, a range, list or step (*/15); default *"),
    hour: cronField("hour", "0-23, a range, list or step; default *"),
    day: cronField("day", "day of the month 1-31, a range, list or step; default *"),
    month: cronField("month", "1-12 or jan-dec, a range, list or step; default *"),
    weekday: cronField("weekday", "0-7 (0 and 7 are Sunday) or sun-sat, a range, list or step; default *"),
    time: v.optional(
      v.pipe(
        v.string(),
        v.description(
          "a special schedule instead of the five fields: @reboot, @hourly, @daily, @weekly, @monthly, @yearly",
        ),
        v.transform((text) => (text.startsWith("@") ? text : `@${text}`)),
        v.picklist(times),
      ),
    ),
    command: v.optional(
      oneLine(
        "command",
        "the command the shell runs (required to create); a % must be written \\% as in any crontab",
      ),
    ),
    user: v.optional(described(accountNameSchema, "whose crontab holds the entry"), "root"),
    environment: v.optional(
      described(
        v.record(
          v.pipe(v.string(), v.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "a variable name")),
          v.pipe(v.string(), v.regex(/^[^\n\r]*$/, "a value must be one line")),
        ),
        "VAR=value lines written just above the entry (MAILTO, PATH…); cron applies them to entries below too",
      ),
      () => ({}),
    ),
  }),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const props = dataset.value;
    const given = fieldNames.filter((field) => props[field] !== undefined);
    if (props.time !== undefined && given.length > 0) {
      addIssue({ message: `give either time or ${given.join(", ")}, not both` });
    }
  }),
);

type Props = v.InferOutput<typeof schema>;

/** A user's crontab, line by line. */
export interface CronState {
  lines: string[];
  /** false when the user does not exist (yet): nothing can be installed */
  userExists: boolean;
}

/** One Galley-managed entry found in a crontab: lines [start, end). */
interface Block {
  start: number;
  end: number;
  environment: Record<string, string>;
  schedule: string | undefined;
  command: string | undefined;
}

/** An entry in a user's crontab, like Chef's cron. */
export const cron = defineResourceType<typeof schema, CronState>({
  type: "cron",
  description:
    "An entry in a user's crontab, named by a `# Galley: NAME` line; other entries are left untouched.",
  actions: ["create", "delete"],
  schema,
  nameProperty: "name",

  key: (props) => `${props.user}:${props.name}`,

  autoRequires: (props) => [{ user: props.user }],

  read: readCrontab,

  diff(current, desired, action) {
    const blocks = findBlocks(current?.lines ?? [], desired.name);
    const block = blocks[0];
    if (action === "delete") return block ? [{ property: "ensure", from: "present", to: "absent" }] : [];
    const wanted = {
      schedule: schedule(desired),
      command: requireCommand(desired),
      environment: desired.environment,
    };
    if (!block) {
      return [
        { property: "ensure", from: "absent", to: "present" },
        { property: "schedule", to: wanted.schedule },
        { property: "command", to: wanted.command },
        ...(Object.keys(wanted.environment).length > 0
          ? [{ property: "environment", to: wanted.environment }]
          : []),
      ];
    }
    const changes: Change[] = [];
    if (block.schedule !== wanted.schedule)
      changes.push({ property: "schedule", ...optional("from", block.schedule), to: wanted.schedule });
    if (block.command !== wanted.command)
      changes.push({ property: "command", ...optional("from", block.command), to: wanted.command });
    if (!sameRecord(block.environment, wanted.environment)) {
      changes.push({ property: "environment", from: block.environment, to: wanted.environment });
    }
    if (blocks.length > 1) changes.push({ property: "duplicates", from: blocks.length - 1, to: 0 });
    return changes;
  },

  async apply(host, desired, action) {
    // read again: another cron resource may have rewritten this crontab since the prefetched read
    const current = await readCrontab(host, desired);
    const lines = current.lines;
    if (!current.userExists) {
      if (action === "delete") return;
      throw new GalleyError(
        "APPLY_FAILED",
        `cron[${desired.name}]: no user ${desired.user} on ${host.name}`,
        {
          hint: `declare user("${desired.user}") in the recipe, or fix the cron's user`,
        },
      );
    }
    const blocks = findBlocks(lines, desired.name);
    const kept = lines.filter(
      (_, index) => !blocks.some((block) => index >= block.start && index < block.end),
    );
    let next = kept;
    if (action !== "delete") {
      const at = blocks[0] ? blocks[0].start : kept.length;
      next = [...kept.slice(0, at), ...entryLines(desired), ...kept.slice(at)];
    }
    await writeCrontab(host, desired.user, next);
  },
});

/** The user's crontab (`crontab -l`); empty when the user has none. */
async function readCrontab(host: Host, props: Props): Promise<CronState> {
  const result = await host.exec(["crontab", "-l", "-u", props.user], { env: { LC_ALL: "C" } });
  if (result.exitCode === 127) {
    throw new GalleyError("PLATFORM_UNSUPPORTED", `cron[${props.name}]: no crontab command on ${host.name}`, {
      hint: "install the cron package first (e.g. a package resource for cron before this one)",
    });
  }
  if (result.exitCode !== 0) {
    if (/no crontab for/.test(result.stderr)) return { lines: [], userExists: true };
    if (/user .* unknown/.test(result.stderr)) return { lines: [], userExists: false };
    throw new GalleyError("EXEC_FAILED", `crontab -l -u ${props.user} failed: ${result.stderr.trim()}`, {
      hint: "reading another user's crontab needs root: run galley as root",
    });
  }
  return { lines: splitLines(result.stdout), userExists: true };
}

/** The five fields (default *) or the special time. */
function schedule(props: Props): string {
  return props.time ?? fieldNames.map((field) => props[field] ?? "*").join(" ");
}

function requireCommand(props: Props): string {
  if (props.command === undefined) {
    throw new GalleyError(
      "RESOURCE_INVALID",
      `cron[${props.name}]: command is required to create the entry`,
      {
        hint: "give the command to run, or use action delete",
      },
    );
  }
  return props.command;
}

/** The managed lines: the marker, the environment, the entry. */
function entryLines(props: Props): string[] {
  const environment = Object.entries(props.environment).map(([name, value]) => `${name}=${value}`);
  return [marker(props.name), ...environment, `${schedule(props)} ${requireCommand(props)}`];
}

const marker = (name: string) => `# Galley: ${name}`;
const envLine = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$/;

/** Every block under this name's marker: its environment lines and the entry right after them. */
function findBlocks(lines: string[], name: string): Block[] {
  const blocks: Block[] = [];
  lines.forEach((line, start) => {
    if (line.trimEnd() !== marker(name)) return;
    const environment: Record<string, string> = {};
    let end = start + 1;
    for (let match = envLine.exec(lines[end] ?? ""); match; match = envLine.exec(lines[end] ?? "")) {
      environment[match[1]!] = match[2]!;
      end++;
    }
    const entry = /^\s*(@\S+|\S+\s+\S+\s+\S+\s+\S+\s+\S+)\s+(.*)$/.exec(lines[end] ?? "");
    // a marker followed by a comment or blank line lost its entry: the block is only the marker and environment
    const isEntry = entry !== null && !lines[end]!.trimStart().startsWith("#");
    blocks.push({
      start,
      end: isEntry ? end + 1 : end,
      environment,
      schedule: isEntry ? entry[1]!.split(/\s+/).join(" ") : undefined,
      command: isEntry ? entry[2]!.trim() : undefined,
    });
  });
  return blocks;
}

/** Installs the lines as the user's crontab; no lines left removes the crontab. */
async function writeCrontab(host: Host, user: string, lines: string[]): Promise<void> {
  if (lines.every((line) => line.trim() === "")) {
    const result = await host.exec(["crontab", "-r", "-u", user], { env: { LC_ALL: "C" } });
    if (result.exitCode === 0 || /no crontab for/.test(result.stderr)) return;
    throw new GalleyError(
      "EXEC_FAILED",
      `crontab -r -u ${user} exited ${result.exitCode}: ${result.stderr.trim()}`,
    );
  }
  await run(host, ["crontab", "-u", user, "-"], { input: `${lines.join("\n")}\n` });
}

function splitLines(text: string): string[] {
  if (text === "") return [];
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines;
}

function sameRecord(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => b[key] === a[key]);
}
