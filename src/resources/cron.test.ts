import * as v from "valibot";
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Host } from "../core/host.ts";
import { LocalHost } from "../hosts/local.ts";
import { cron, cronFieldError } from "./cron.ts";
import { convergeTwice, prepare } from "./testing.ts";

const host = new LocalHost();
const skip = process.getuid?.() !== 0 && "needs root: creates a test user and edits its crontab";
const owner = `galley-t-cron${process.pid.toString(36)}`;
const unmanaged =
  "# mine, not Galley's\nMAILTO=ops@example.com\n*/5 * * * * /usr/bin/true first\n\n0 1 * * * /usr/bin/true second\n";

before(async () => {
  if (skip) return;
  await host.exec(["useradd", "-M", owner]);
});

after(async () => {
  if (skip) return;
  await host.exec(["crontab", "-r", "-u", owner]);
  await host.exec(["userdel", owner]);
});

async function crontab(): Promise<string> {
  const result = await host.exec(["crontab", "-l", "-u", owner]);
  return result.exitCode === 0 ? result.stdout : "";
}

async function install(text: string): Promise<void> {
  const result = await host.exec(["crontab", "-u", owner, "-"], { input: text });
  assert.equal(result.exitCode, 0, result.stderr);
}

test("cron: create appends the entry and leaves other entries as they were", { skip }, async () => {
  await install(unmanaged);
  const changes = await convergeTwice(host, cron, {
    name: "backup",
    minute: 30,
    hour: "2",
    weekday: "mon-fri",
    command: "/usr/local/bin/backup --all",
    user: owner,
    environment: { MAILTO: "root" },
  });
  assert.deepEqual(changes, [
    { property: "ensure", from: "absent", to: "present" },
    { property: "schedule", to: "30 2 * * mon-fri" },
    { property: "command", to: "/usr/local/bin/backup --all" },
    { property: "environment", to: { MAILTO: "root" } },
  ]);
  assert.equal(
    await crontab(),
    `${unmanaged}# Galley: backup\nMAILTO=root\n30 2 * * mon-fri /usr/local/bin/backup --all\n`,
  );
});

test("cron: a changed schedule, command or environment is rewritten in place", { skip }, async () => {
  await install(`${await crontab()}# trailing comment\n`);
  const changes = await convergeTwice(host, cron, {
    name: "backup",
    hour: "3",
    command: "/usr/local/bin/backup",
    user: owner,
  });
  assert.deepEqual(changes, [
    { property: "schedule", from: "30 2 * * mon-fri", to: "* 3 * * *" },
    { property: "command", from: "/usr/local/bin/backup --all", to: "/usr/local/bin/backup" },
    { property: "environment", from: { MAILTO: "root" }, to: {} },
  ]);
  assert.equal(
    await crontab(),
    `${unmanaged}# Galley: backup\n* 3 * * * /usr/local/bin/backup\n# trailing comment\n`,
  );
});

test("cron: a special time and a second managed entry", { skip }, async () => {
  await convergeTwice(host, cron, {
    name: "warm",
    time: "reboot",
    command: "/usr/bin/true warm",
    user: owner,
  });
  assert.match(await crontab(), /^# Galley: warm\n@reboot \/usr\/bin\/true warm\n$/m);
});

test("cron: two entries read before either applies both land (apply reads again)", { skip }, async () => {
  const first = await prepare(cron, { name: "one", command: "/usr/bin/true 1", user: owner });
  const second = await prepare(cron, { name: "two", command: "/usr/bin/true 2", user: owner });
  const [a, b] = [await cron.read(host, first), await cron.read(host, second)];
  await cron.apply(host, first, "create", a, { stateDir: "/x" });
  await cron.apply(host, second, "create", b, { stateDir: "/x" });
  assert.match(await crontab(), /# Galley: one\n.*true 1\n# Galley: two\n.*true 2\n$/);
  for (const props of [first, second]) await cron.apply(host, props, "delete", undefined, { stateDir: "/x" });
});

test("cron: delete removes only its own entry, twice is a no-op", { skip }, async () => {
  const changes = await convergeTwice(host, cron, { name: "backup", user: owner }, { action: "delete" });
  assert.deepEqual(changes, [{ property: "ensure", from: "present", to: "absent" }]);
  assert.equal(
    await crontab(),
    `${unmanaged}# trailing comment\n# Galley: warm\n@reboot /usr/bin/true warm\n`,
  );
});

test("cron: deleting the last entry of a crontab removes the crontab", { skip }, async () => {
  await host.exec(["crontab", "-r", "-u", owner]);
  await convergeTwice(host, cron, { name: "only", command: "/usr/bin/true", user: owner });
  await convergeTwice(host, cron, { name: "only", user: owner }, { action: "delete" });
  const result = await host.exec(["crontab", "-l", "-u", owner], { env: { LC_ALL: "C" } });
  assert.match(result.stderr, /no crontab/);
});

test("cron: a user that does not exist is a clear error at apply", { skip }, async () => {
  const props = await prepare(cron, { name: "x", command: "true", user: "galley-t-nosuchuser" });
  const current = await cron.read(host, props);
  assert.deepEqual(current, { lines: [], userExists: false });
  await assert.rejects(
    cron.apply(host, props, "create", current, { stateDir: "/x" }),
    /no user galley-t-nosuchuser/,
  );
  assert.deepEqual(cron.diff(current, props, "delete"), []);
});

test("cron: create without a command is refused", async () => {
  const props = await prepare(cron, { name: "x" });
  assert.throws(() => cron.diff({ lines: [], userExists: true }, props, "create"), /command is required/);
});

test("cron: a missing crontab command says which package to install", async () => {
  const noCron = {
    name: "bare",
    exec: async (argv: readonly string[]) => ({
      argv,
      exitCode: 127,
      stdout: "",
      stderr: "crontab: command not found",
      timedOut: false,
      durationMs: 0,
    }),
  } as unknown as Host;
  const props = await prepare(cron, { name: "x", command: "true" });
  await assert.rejects(cron.read(noCron, props), (error: Error) => {
    assert.match(error.message, /no crontab command on bare/);
    assert.match((error as { hint?: string }).hint ?? "", /cron package/);
    return true;
  });
});

test("cron: a marker without its entry is repaired", () => {
  const current = { lines: ["# Galley: x", "# someone's comment", "0 1 * * * other"], userExists: true };
  const changes = cron.diff(current, v.parse(cron.schema, { name: "x", command: "run" }), "create");
  assert.deepEqual(changes, [
    { property: "schedule", to: "* * * * *" },
    { property: "command", to: "run" },
  ]);
});

test("cron: a duplicated entry is reported so that apply keeps only one", () => {
  const entry = ["# Galley: x", "* * * * * run"];
  const changes = cron.diff(
    { lines: [...entry, ...entry], userExists: true },
    v.parse(cron.schema, { name: "x", command: "run" }),
    "create",
  );
  assert.deepEqual(changes, [{ property: "duplicates", from: 1, to: 0 }]);
});

test("cron: field syntax: numbers, names, ranges, lists and steps", () => {
  for (const [field, text] of [
    ["minute", "*/15"],
    ["minute", "0,30"],
    ["hour", "8-18/2"],
    ["day", "1-7,15,28-31"],
    ["month", "JAN-mar,dec"],
    ["weekday", "7"],
    ["weekday", "mon-fri"],
  ] as const) {
    assert.equal(cronFieldError(field, text), undefined, `${field} ${text}`);
  }
  assert.match(cronFieldError("minute", "60") ?? "", /60 is out of range 0-59/);
  assert.match(cronFieldError("day", "0") ?? "", /out of range 1-31/);
  assert.match(cronFieldError("minute", "*/0") ?? "", /step "0"/);
  assert.match(cronFieldError("minute", "5/10") ?? "", /a step needs a range/);
  assert.match(cronFieldError("hour", "5-3") ?? "", /goes backwards/);
  assert.match(cronFieldError("weekday", "funday") ?? "", /not a number or a name \(sun/);
  assert.match(cronFieldError("hour", "mon") ?? "", /"mon" is not a number$/);
  assert.match(cronFieldError("minute", "1,,2") ?? "", /not a value/);
});

test("cron: schema errors name the field", () => {
  const issues = (input: Record<string, unknown>) => JSON.stringify(v.safeParse(cron.schema, input).issues);
  assert.match(issues({ name: "x", command: "c", minute: "61" }), /minute: 61 is out of range 0-59/);
  assert.match(issues({ name: "x", command: "c", time: "@daily", hour: 3 }), /either time or hour/);
  assert.match(issues({ name: "x", command: "c", time: "fortnightly" }), /@daily/);
  assert.match(issues({ name: "x", command: "c\nrm -rf /" }), /one line/);
  assert.match(issues({ name: "x", command: "c", environment: { "BAD NAME": "1" } }), /variable name/);
  assert.match(issues({ name: "x", command: "c", user: "bad user" }), /letters, digits/);
  const trimmed = v.parse(cron.schema, { name: " x ", command: " c " });
  assert.deepEqual([trimmed.name, trimmed.command], ["x", "c"]);
  const ok = v.parse(cron.schema, { name: "x", command: "c" });
  assert.equal(ok.user, "root");
  assert.deepEqual(cron.autoRequires?.(ok), [{ user: "root" }]);
  assert.equal(cron.key(ok), "root:x");
});
